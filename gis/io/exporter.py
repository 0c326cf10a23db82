"""Export a catalog layer to GeoPackage, GeoJSON or CSV.

Only public fields leave unless ``include_private=True`` (owner names, inspector notes and
reporters' contact details are private). Identifiers come from the catalog and are quoted;
the bounding box is passed as bound parameters. Coordinates are transformed with pyproj (the
same transformation as imports, so an export in EPSG:9214 re-imports to the same lon/lat).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql

from gis.catalog import vector_layer
from gis.crs import parse_bbox, parse_crs
from gis.errors import InvalidParameter
from gis.sqlbuild import visible_fields
from layers import Layer

ExportFormat = Literal["gpkg", "geojson", "csv"]
EXPORT_FORMATS: tuple[str, ...] = ("gpkg", "geojson", "csv")
_DRIVERS = {"gpkg": "GPKG", "geojson": "GeoJSON"}
FETCH_ROWS = 50_000


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
                 crs: str | int | None = None, include_private: bool = False) -> int:
    """Write the features of a layer to a file.

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
    import geopandas as gpd
    import pyogrio

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
        table=sql.Identifier(target.schema, target.table))
    params: tuple[float, ...] = ()
    if box is not None:
        query += sql.SQL(" WHERE ST_Intersects({geom}, ST_MakeEnvelope(%s, %s, %s, %s, 4326))"
                         ).format(geom=sql.Identifier(target.geometry_column))
        params = box
    query += sql.SQL(" ORDER BY {}").format(sql.Identifier(target.id_column))
    rows: list[tuple] = []
    with conn.cursor() as cur:
        cur.execute(query, params)
        while batch := cur.fetchmany(FETCH_ROWS):
            rows.extend(batch)
    df = _frame(target, names, rows)
    geoms = shapely.from_wkb(np.array([r[-1] for r in rows], dtype=object))
    gdf = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, crs=4326, index=df.index))
    if srid != 4326:
        gdf = gdf.to_crs(srid)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.stem}.part{out.suffix}")
    part.unlink(missing_ok=True)
    try:
        if fmt == "csv":
            _write_csv(target, gdf, part, projected=gdf.crs.is_projected)
        else:
            pyogrio.write_dataframe(gdf, part, layer=target.id, driver=_DRIVERS[fmt],
                                    geometry_type=target.geometry_type)
        os.replace(part, out)
    finally:
        part.unlink(missing_ok=True)
    return len(rows)


def _write_csv(layer: Layer, gdf, path: Path, projected: bool) -> None:
    df = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    if layer.geometry_type == "Point":
        xname, yname = ("x", "y") if projected else ("lon", "lat")
        df[xname] = shapely.get_x(geoms)
        df[yname] = shapely.get_y(geoms)
    else:
        df["wkt"] = shapely.to_wkt(geoms, rounding_precision=-1)
    df.to_csv(path, index=False, encoding="utf-8")
