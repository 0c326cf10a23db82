"""COPY for imports: rows as whole blocks of PostgreSQL's text format, the background stages
of the import pipeline, and a refused COPY turned into a message naming the file's row.

The blocks are the text format that :func:`gis.bulk.copy_rows` writes row by row; built from
columns with numpy, they leave the sending thread almost no Python work.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterator

import numpy as np
import pandas as pd
import psycopg

from gis.errors import ImportRejected
from gis.io.values import to_str
from layers import Layer

_COPY_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_escape = np.frompyfunc(lambda v: v.translate(_COPY_ESCAPE), 1, 1)


def copy_block(columns: list[np.ndarray]) -> bytes:
    r"""Rows (one object array per column, None for NULL) in PostgreSQL COPY text format.

    >>> copy_block([np.array(["a\tb", None], dtype=object), np.array([1.5, 2], dtype=object)])
    b'a\\tb\t1.5\n\\N\t2\n'
    """
    if not len(columns) or not len(columns[0]):
        return b""
    texts: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    for col in columns:
        null = np.asarray(pd.isna(col), dtype=bool)
        vals = col[~null] if null.any() else col
        if pd.api.types.infer_dtype(vals, skipna=False) not in ("string", "empty"):
            vals = to_str(vals)
        text = np.full(len(col), "\\N", dtype=object)
        text[~null] = vals
        texts.append(text)
        masks.append(null)
    block = "\n".join(map("\t".join, zip(*texts, strict=True))) + "\n"
    n, k = len(columns[0]), len(columns)
    markers = sum(int(m.sum()) for m in masks)  # each NULL is one backslash: \N
    if (block.count("\\") != markers or "\r" in block or block.count("\n") != n
            or block.count("\t") != n * (k - 1)):  # some value holds a special character
        for text, null in zip(texts, masks, strict=True):
            if (~null).any():
                text[~null] = _escape(text[~null])
        block = "\n".join(map("\t".join, zip(*texts, strict=True))) + "\n"
    return block.encode()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


class Background:
    """Iterate over ``items`` in a thread; iterating over this yields them (errors re-raised).

    Every stage of a pipeline shares ``stop``: once it is set, all of them wind down.
    """

    def __init__(self, items: Iterator, stop: threading.Event, name: str,
                 maxsize: int = 2) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._stop = stop
        self._thread = threading.Thread(target=self._run, args=(items,), name=name,
                                        daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, items: Iterator) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as e:  # handed to the consuming thread
            self._put(_Failure(e))

    def __iter__(self) -> Iterator:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def join(self) -> None:
        self._thread.join()



def db_rejection(err: psycopg.Error, layer: Layer, written: list[np.ndarray]
                 ) -> ImportRejected:
    """The error of a COPY refused by the database, naming the file's row when it can.

    Parameters
    ----------
    err : psycopg.Error
        The error of the COPY (its context names the COPY's line).
    layer : Layer
        Target layer.
    written : list of numpy.ndarray
        File row numbers of the rows sent, block by block in COPY order.
    """
    diag = err.diag
    row = None
    m = re.search(r"COPY [^,]+, line (\d+)", diag.context or "")
    if m:
        line = int(m.group(1))
        done = 0
        for part in written:
            if line <= done + len(part):
                row = int(part[line - done - 1])
                break
            done += len(part)
    where = f"row {row}: " if row else ""
    detail = f" ({diag.message_detail})" if diag.message_detail else ""
    if isinstance(err, psycopg.errors.UniqueViolation):
        what = "clashes with an existing row"
    else:
        what = "was refused by the database"
    return ImportRejected(f"import into {layer.id!r} {what}; nothing was written: {where}"
                          f"{diag.message_primary or err}{detail}", layer=layer.id, row=row)

