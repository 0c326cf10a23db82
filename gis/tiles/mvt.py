"""Vector tiles (MVT) built in PostGIS with ST_AsMVT from the layer's declaration."""

from __future__ import annotations

import morecantile

from gis.errors import InvalidTile, TileMatrixSetNotFound
from gis.sqlbuild import id_is_integer, ident, literal, table_ref, visible_fields
from layers import Layer

EXTENT = 4096
BUFFER = 64
SUPPORTED_TMS = ("WebMercatorQuad",)


def tile_matrix_set(tms_id: str) -> morecantile.TileMatrixSet:
    """The morecantile TileMatrixSet ``tms_id``, or ``TileMatrixSetNotFound``."""
    if tms_id not in SUPPORTED_TMS:
        raise TileMatrixSetNotFound(
            f"unknown tile matrix set {tms_id!r}; supported: {', '.join(SUPPORTED_TMS)}")
    return morecantile.tms.get(tms_id)


def check_tile(tms: morecantile.TileMatrixSet, z: int, x: int, y: int) -> None:
    """Raise ``InvalidTile`` unless z/x/y address a tile of ``tms``.

    >>> check_tile(morecantile.tms.get("WebMercatorQuad"), 1, 1, 1)
    >>> check_tile(morecantile.tms.get("WebMercatorQuad"), 1, 2, 0)
    Traceback (most recent call last):
    ...
    gis.errors.InvalidTile: tile column 2 is out of range 0..1 at zoom 1
    """
    if not tms.minzoom <= z <= min(tms.maxzoom, 24):
        raise InvalidTile(f"zoom {z} is out of range {tms.minzoom}..{min(tms.maxzoom, 24)}")
    matrix = tms.matrix(z)
    if not 0 <= x < matrix.matrixWidth:
        raise InvalidTile(f"tile column {x} is out of range 0..{matrix.matrixWidth - 1} "
                          f"at zoom {z}")
    if not 0 <= y < matrix.matrixHeight:
        raise InvalidTile(f"tile row {y} is out of range 0..{matrix.matrixHeight - 1} "
                          f"at zoom {z}")


def mvt_sql(layer: Layer) -> str:
    """SQL producing the MVT of one layer for tile ``($1 z, $2 x, $3 y)``, public fields only.

    The layer inside the tile is named by the collection id. ``$4`` caps the number of
    features in one tile, so that no request builds a tile of many megabytes.
    """
    g = ident(layer.geometry_column)
    fields = visible_fields(layer)
    cols = ", ".join(f"t.{ident(f)}" for f in fields)
    id_select, id_arg = "", ""
    if id_is_integer(layer) and layer.id_column not in fields:
        id_select = f"t.{ident(layer.id_column)} AS {ident('__id')}, "
        id_arg = ", " + "'__id'"
    margin = BUFFER / EXTENT
    return (
        "WITH b AS (SELECT ST_TileEnvelope($1, $2, $3) AS env, "
        f"ST_Transform(ST_TileEnvelope($1, $2, $3, margin => {margin}), 4326) AS env4326), "
        "m AS (SELECT " + id_select +
        f"ST_AsMVTGeom(ST_Transform(t.{g}, 3857), b.env, {EXTENT}, {BUFFER}, true) AS "
        f"{ident('__geom')}" + (", " + cols if cols else "") +
        f" FROM {table_ref(layer)} AS t, b WHERE t.{g} && b.env4326 LIMIT $4) "
        f"SELECT ST_AsMVT(m.*, {literal(layer.id)}, {EXTENT}, '__geom'{id_arg}) FROM m "
        f"WHERE m.{ident('__geom')} IS NOT NULL"
    )

