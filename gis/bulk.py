"""Bulk writes through PostgreSQL COPY: the one path every loader and importer uses."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import psycopg
from psycopg import sql

ProgressFn = Callable[[int], None]


def copy_statement(table: str, columns: Sequence[str]) -> sql.Composed:
    """``COPY "schema"."table" ("col", …) FROM STDIN`` with every identifier quoted.

    >>> copy_statement("public.land_parcels", ["geom"]).as_string(None)
    'COPY "public"."land_parcels" ("geom") FROM STDIN'
    """
    return sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(*table.split(".")), sql.SQL(", ").join(map(sql.Identifier, columns)))


def copy_rows(conn: psycopg.Connection, table: str, columns: Sequence[str],
              rows: Iterable[Sequence[object]], *, progress: ProgressFn | None = None,
              every: int = 10_000) -> int:
    """COPY ``rows`` into ``table(columns)``; return the number of rows written.

    Geometry values are passed as hex EWKB strings (``shapely.to_wkb(g, hex=True,
    include_srid=True)``), which PostGIS parses directly. ``progress(n)`` is called with the
    number of rows written since its last call.

    Example
    -------
    >>> import shapely
    >>> shapely.to_wkb(shapely.Point(107.59, 16.46), hex=True, include_srid=True)[:10]
    '0101000000'
    """
    stmt = copy_statement(table, columns)
    n = 0
    pending = 0
    with conn.cursor() as cur, cur.copy(stmt) as cp:
        for row in rows:
            cp.write_row(row)
            n += 1
            pending += 1
            if progress and pending >= every:
                progress(pending)
                pending = 0
    if progress and pending:
        progress(pending)
    return n


def ewkb_hex(geom, srid: int = 4326) -> str:
    """Hex EWKB of a shapely geometry with ``srid`` set, ready for :func:`copy_rows`."""
    import shapely

    return shapely.to_wkb(shapely.set_srid(geom, srid), hex=True, include_srid=True)
