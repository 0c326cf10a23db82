"""Import vector files (GeoJSON, GeoPackage, zipped Shapefile, CSV) into a catalog layer.

The import is all or nothing: it runs in a SAVEPOINT of the caller's transaction, and when it
raises nothing was written. The caller commits. With ``skip_invalid=True`` the rows that fail
validation are left out and reported instead.

Pipeline (vectorised with shapely 2 / numpy / pandas, no per-row geometry loop on the hot
path), in three threads: one reads the file in chunks (pyogrio; :mod:`gis.io.read`); one
reprojects to EPSG:4326 (pyproj), checks and repairs geometries, coerces attributes to the
layer's field types (:mod:`gis.io.values`), computes the fields the catalog marks
``derive`` (area in EPSG:9214, ward by point in polygon), checks the layer's natural key
(:mod:`gis.io.validate`, with what :mod:`gis.io.context` read from the database) and
formats the accepted rows as a COPY block; the calling thread streams the blocks into the
table with one ``COPY``, while PostgreSQL ingests on its own core. (Whole blocks in the text
format that :func:`gis.bulk.copy_rows` writes row by row: the sending thread then needs almost
no Python time; :mod:`gis.io.copy`.)

Row numbers in messages are 1-based positions of features in the file (for CSV: data lines
after the header).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg

from gis.bulk import copy_statement
from gis.catalog import vector_layer
from gis.crs import parse_crs
from gis.errors import ImportRejected
from gis.io.context import load_context
from gis.io.copy import Background, db_rejection
from gis.io.read import Source, open_source, source_crs
from gis.io.validate import Validator
from layers import VECTOR_LAYERS, Layer

MAX_LISTED = 20  # problems listed in an error message


@dataclass
class ImportReport:
    """What an import did.

    Attributes
    ----------
    layer : str
        Layer id.
    read : int
        Features read from the file.
    inserted : int
        Rows written.
    repaired : list of int
        Row numbers (1-based) whose invalid geometry was repaired (``shapely.make_valid``).
    skipped : list of (int, str)
        Rows left out with ``skip_invalid=True``: row number and reason.
    source_crs : int
        EPSG code of the file's coordinates (0 if the file's CRS has none).
    seconds : float
        Wall-clock duration.
    """

    layer: str
    read: int
    inserted: int
    repaired: list[int] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    source_crs: int = 4326
    seconds: float = 0.0


def _importable(layer: Layer | str) -> Layer:
    found = vector_layer(layer)
    if not found.importable:
        importable = sorted(k for k, v in VECTOR_LAYERS.items() if v.importable)
        raise ImportRejected(f"layer {found.id!r} cannot be imported (it is maintained by "
                             f"the platform); importable layers: {', '.join(importable)}",
                             layer=found.id)
    return found


def _summary(layer: Layer, source: Source, errors: list[tuple[int, str]]) -> str:
    errors = sorted(errors)
    shown = "\n".join(f"  row {r}: {why}" for r, why in errors[:MAX_LISTED])
    more = f"\n  … and {len(errors) - MAX_LISTED} more" if len(errors) > MAX_LISTED else ""
    return (f"{source.name}: {len(errors)} of {source.total} rows rejected for layer "
            f"{layer.id!r}; nothing was written (use --skip-invalid to import the other "
            f"rows):\n{shown}{more}")


def import_file(conn: psycopg.Connection, path: Path | str, layer: Layer | str,
                crs: str | int | None = None, *, skip_invalid: bool = False,
                progress: Callable[[int], None] | None = None,
                on_total: Callable[[int], None] | None = None) -> ImportReport:
    """Import a vector file into a layer, all or nothing.

    Parameters
    ----------
    conn : psycopg.Connection
        Connection whose transaction receives the rows; the caller commits. The import runs
        in a SAVEPOINT: when it raises, nothing was written and the transaction is usable.
        (On an autocommit connection the import is its own transaction.)
    path : Path
        ``.geojson``/``.json``, ``.gpkg``, ``.zip`` (zipped Shapefile), ``.shp`` or ``.csv``
        (lon/lat columns named lon|lng|longitude|x and lat|latitude|y, or a WKT column named
        wkt|geometry|geom; UTF-8, comma-separated).
    layer : Layer or str
        Target layer of the catalog (must be importable).
    crs : str or int, optional
        CRS of the coordinates (see :func:`gis.crs.parse_crs`), overriding the file's. A CSV
        without it is EPSG:4326; other files must carry a CRS.
    skip_invalid : bool
        Leave out the rows that fail validation (reported in ``skipped``) instead of
        rejecting the file.
    progress : callable, optional
        Called with the number of rows handled (written or skipped) since the last call.
    on_total : callable, optional
        Called once with the number of features in the file, before the rows are handled.

    Returns
    -------
    ImportReport

    Raises
    ------
    LayerNotFound
        ``layer`` is not a vector layer of the catalog.
    UnknownCRS
        ``crs`` is not a supported CRS.
    ImportRejected
        The layer is not importable; the file is missing, empty, unreadable or of an
        unsupported type; it has no geometry or no CRS; columns are unknown or required
        fields missing; or rows are invalid (wrong type, unrepairable geometry, outside Huế,
        bad values, duplicate keys within the file or with existing rows) and
        ``skip_invalid`` is false. The message names the rows (1-based) and the problems;
        ``details["errors"]`` lists them all. A row refused by a database constraint that the
        catalog does not declare (e.g. ``beds >= 0``) rejects the import with its row number,
        even with ``skip_invalid``.

    Examples
    --------
    With an open connection (the tests run this against PostGIS)::

        report = import_file(conn, Path("parcels.gpkg"), "parcels", "EPSG:9214")
        conn.commit()
    """
    started = time.perf_counter()
    target = _importable(layer)
    srid = parse_crs(crs) if crs is not None else None
    path = Path(path)
    source = open_source(path, target)
    src_crs, source_srid = source_crs(source, srid)
    if on_total:
        on_total(source.total)

    if not conn.autocommit and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        conn.execute("SELECT 1")  # open the caller's transaction: the block below is a savepoint
    errors: list[tuple[int, str]] = []
    repaired: list[int] = []
    written: list[np.ndarray] = []
    missing_geometry = 0
    with conn.transaction():
        ctx = load_context(conn, target)
        validator = Validator(target, source, ctx, src_crs, skip_invalid)
        # Three stages side by side: read (GDAL), validate (numpy/shapely/pyproj, which release
        # the interpreter lock), and COPY here, while PostgreSQL ingests on its own core.
        stop = threading.Event()
        raws = Background(source.chunks(), stop, "huegis-import-read")
        chunks = Background((validator.process(raw) for raw in raws), stop,
                            "huegis-import-validate")
        copy = copy_statement(f"{target.schema}.{target.table}", validator.columns)
        inserted = 0
        try:
            with conn.cursor() as cur, cur.copy(copy) as cp:
                for item in chunks:
                    errors.extend(item.errors)
                    repaired.extend(item.repaired)
                    missing_geometry += item.missing_geometry
                    if len(item.rows):
                        written.append(item.rows)
                        cp.write(item.data)
                        inserted += len(item.rows)
                    if progress:
                        progress(len(item.rows) + len(item.errors))
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as e:
            raise db_rejection(e, target, written) from None
        finally:
            stop.set()
            chunks.join()
            raws.join()
        if missing_geometry == source.total:
            raise ImportRejected(f"{source.name} has no geometries (every feature's geometry "
                                 "is empty)", file=source.name)
        if errors and not skip_invalid:
            raise ImportRejected(_summary(target, source, errors), layer=target.id,
                                 file=source.name, errors=sorted(errors))
    return ImportReport(layer=target.id, read=source.total, inserted=inserted,
                        repaired=sorted(repaired), skipped=sorted(errors),
                        source_crs=source_srid, seconds=time.perf_counter() - started)
