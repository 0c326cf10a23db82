"""Export a catalog layer to GeoPackage, GeoJSON or CSV.

Only public fields leave unless ``include_private=True`` (owner names, inspector notes and
reporters' contact details are private). Identifiers come from the catalog and are quoted;
the bounding box is passed as bound parameters. Coordinates are transformed with pyproj (the
same transformation as imports, so an export in EPSG:9214 re-imports to the same lon/lat).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import psycopg
import pyproj
import shapely
from psycopg import sql

from gis.catalog import vector_layer
from gis.crs import parse_bbox, parse_crs
from gis.errors import InvalidParameter
from gis.io.stream import Chunk, CSVWriter, GeoJSONWriter, GpkgWriter
from gis.raster import transformer
from gis.sqlbuild import visible_fields
from layers import Layer

ExportFormat = Literal["gpkg", "geojson", "csv"]
EXPORT_FORMATS: tuple[str, ...] = ("gpkg", "geojson", "csv")
FETCH_ROWS = 20_000  # rows per chunk: the memory an export needs, whatever its size


def _frame(layer: Layer, names: list[str], rows: list[tuple]) -> pd.DataFrame:
    """Attribute columns with pandas dtypes that GDAL writes as typed fields."""
    data: dict[str, object] = {}
    types = {f.name: f.type for f in layer.fields}
    for j, name in enumerate(names):
        col = [r[j] for r in rows]
        kind = types.get(name, "int" if name == layer.id_column else "text")
        if kind == "int":
            data[name] = pd.array(col, dtype="Int64")
        elif kind == "float":
            data[name] = pd.array(col, dtype="Float64")
        elif kind == "bool":
            data[name] = pd.array(col, dtype="boolean")
        elif kind in ("date", "datetime"):  # ISO 8601 text: portable across the three formats
            data[name] = pd.array([v.isoformat() if v is not None else None for v in col],
                                  dtype=object)
        else:
            data[name] = pd.array(col, dtype=object)
    return pd.DataFrame(data, index=pd.RangeIndex(len(rows)))


def export_layer(conn: psycopg.Connection, layer: Layer | str, out: Path | str,
                 fmt: ExportFormat, *, bbox: str | Sequence[float] | None = None,
                 crs: str | int | None = None, include_private: bool = False,
                 chunk_rows: int = FETCH_ROWS,
                 on_chunk: Callable[[int], None] | None = None) -> int:
    """Write the features of a layer to a file, in constant memory.

    Rows come from a server-side cursor ``chunk_rows`` at a time and each chunk goes straight
    to the file through the writers of :mod:`gis.io.stream` (the API's downloads use the same
    ones), so a 1,000,000-parcel export holds one chunk in memory, not the layer.

    Parameters
    ----------
    conn : psycopg.Connection
        Database connection (only read).
    layer : Layer or str
        Vector layer of the catalog.
    out : Path
        File to write (replaced if it exists; parent folders are created).
    fmt : {'gpkg', 'geojson', 'csv'}
        GeoPackage, GeoJSON, or CSV with a ``wkt`` column (``lon``/``lat`` for point layers,
        ``x``/``y`` when ``crs`` is projected). Dates and date-times are ISO 8601 text.
    bbox : str or sequence of float, optional
        ``W,S,E,N`` in CRS84: only features intersecting it.
    crs : str or int, optional
        Output CRS (:func:`gis.crs.parse_crs`), default EPSG:4326.
    include_private : bool
        Also export the private fields (``Field.public=False``). Off by default.
    chunk_rows : int
        Rows per chunk (the memory bound).
    on_chunk : callable, optional
        Called after each chunk with the number of features written so far (progress).

    Returns
    -------
    int
        Number of features written.

    Raises
    ------
    LayerNotFound
        Unknown layer.
    InvalidParameter
        Unknown format.
    InvalidBBox, UnknownCRS
        Malformed ``bbox`` or unsupported ``crs``.

    Examples
    --------
    With an open connection (the tests run this against PostGIS)::

        n = export_layer(conn, "parcels", Path("out.gpkg"), "gpkg", crs="EPSG:9214")
    """
    target = vector_layer(layer)
    if fmt not in EXPORT_FORMATS:
        raise InvalidParameter(f"unknown export format {fmt!r}; use one of "
                               f"{', '.join(EXPORT_FORMATS)}", format=str(fmt))
    box = parse_bbox(bbox) if bbox is not None else None
    srid = parse_crs(crs) if crs is not None else 4326
    names = visible_fields(target, include_private)
    if target.id_column not in names:
        names.insert(0, target.id_column)
    query = sql.SQL("SELECT {cols}, ST_AsBinary({geom}) FROM {table}").format(
        cols=sql.SQL(", ").join(map(sql.Identifier, names)),
        geom=sql.Identifier(target.geometry_column),
        # Without the private fields, the public view (rounded sensitive locations).
        table=sql.Identifier(target.schema, target.table if include_private
                             else target.public_view or target.table))
    params: tuple[float, ...] = ()
    if box is not None:
        query += sql.SQL(" WHERE ST_Intersects({geom}, ST_MakeEnvelope(%s, %s, %s, %s, 4326))"
                         ).format(geom=sql.Identifier(target.geometry_column))
        params = box
    query += sql.SQL(" ORDER BY {}").format(sql.Identifier(target.id_column))

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.stem}.part{out.suffix}")
    part.unlink(missing_ok=True)
    projected = srid != 4326 and pyproj.CRS.from_epsg(srid).is_projected
    if fmt == "gpkg":
        writer: GpkgWriter | GeoJSONWriter | CSVWriter = GpkgWriter(
            part, target.id, srid, target.geometry_type, empty=_frame(target, names, []))
    elif fmt == "geojson":
        writer = GeoJSONWriter(srid)
    else:
        writer = CSVWriter(point_columns=target.geometry_type == "Point", projected=projected,
                           columns=names)
    n = 0
    try:
        with open(part, "ab") as f:
            if isinstance(writer, GeoJSONWriter):
                f.write(writer.start())
            for chunk in _chunks(conn, query, params, target, names, srid, chunk_rows):
                f.write(writer.write(chunk))
                n += len(chunk)
                if on_chunk is not None:
                    on_chunk(n)
            f.write(writer.finish())
        os.replace(part, out)
    finally:
        part.unlink(missing_ok=True)
    return n


def _chunks(conn: psycopg.Connection, query: sql.Composable, params: tuple, layer: Layer,
            names: list[str], srid: int, chunk_rows: int) -> Iterator[Chunk]:
    """Rows of a server-side cursor, ``chunk_rows`` at a time, as chunks in ``srid``."""
    # A server-side cursor lives in a transaction (opened here on an autocommit connection).
    block = conn.transaction() if conn.autocommit else contextlib.nullcontext()
    with block, conn.cursor(name=f"huegis_export_{uuid.uuid4().hex[:8]}") as cur:
        cur.itersize = chunk_rows
        cur.execute(query, params)
        while rows := cur.fetchmany(chunk_rows):
            geoms = shapely.from_wkb(np.array([r[-1] for r in rows], dtype=object))
            if srid != 4326:
                geoms = _to_crs(geoms, srid)
            yield Chunk(_frame(layer, names, rows), geoms)


def _to_crs(geoms: np.ndarray, srid: int) -> np.ndarray:
    t = transformer(4326, srid)
    return shapely.transform(geoms, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))
