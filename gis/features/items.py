"""Features of a vector layer as GeoJSON, built in PostGIS from the layer's declaration."""

from __future__ import annotations

from dataclasses import dataclass

from gis.errors import InvalidParameter
from gis.sqlbuild import bbox_clause, id_is_integer, ident, literal, properties_json, table_ref
from layers import Layer

GEOJSON_DECIMALS = 7  # ~1 cm at Huế's latitude


@dataclass(frozen=True)
class ItemsQuery:
    """A validated items request."""

    limit: int
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None
    # Keyset cursor: only features whose id is greater (what ``next`` links use, so deep
    # pages cost the same as the first one).
    after: int | str | None = None


def items_sql(layer: Layer, q: ItemsQuery) -> tuple[str, list[object]]:
    """SQL returning one GeoJSON Feature (text) per row, public fields only.

    Each row is ``(feature_text, id)``. One row more than ``limit`` is fetched so the caller
    knows whether a next page exists.

    Example
    -------
    >>> from layers import VECTOR_LAYERS
    >>> sql, params = items_sql(VECTOR_LAYERS['health'], ItemsQuery(limit=10, after=5))
    >>> params
    [5, 11, 0]
    """
    alias = "t"
    geom = f"{alias}.{ident(layer.geometry_column)}"
    idcol = f"{alias}.{ident(layer.id_column)}"
    params: list[object] = []
    where = []
    if q.after is not None:
        params.append(q.after)
        where.append(f"{idcol} > ${len(params)}")
    if q.bbox is not None:
        where.append(bbox_clause(layer, len(params) + 1, alias))
        params.extend(q.bbox)
    params.extend([q.limit + 1, q.offset])
    n = len(params)
    sql = (
        "SELECT json_build_object('type', 'Feature', 'id', " + idcol + ", "
        f"'geometry', ST_AsGeoJSON({geom}, {GEOJSON_DECIMALS})::json, "
        f"'properties', {properties_json(layer, alias)})::text, {idcol} "
        f"FROM {table_ref(layer)} AS {alias}"
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY {idcol} LIMIT ${n - 1} OFFSET ${n}"
    )
    return sql, params


def item_sql(layer: Layer) -> str:
    """SQL returning one GeoJSON Feature (text) by id (``$1``)."""
    alias = "t"
    idcol = f"{alias}.{ident(layer.id_column)}"
    return (
        "SELECT json_build_object('type', 'Feature', 'id', " + idcol + ", "
        f"'geometry', ST_AsGeoJSON({alias}.{ident(layer.geometry_column)}, "
        f"{GEOJSON_DECIMALS})::json, 'properties', {properties_json(layer, alias)})::text "
        f"FROM {table_ref(layer)} AS {alias} WHERE {idcol}::text = $1"
    )


def extent_sql(layer: Layer, estimated: bool = False) -> str:
    """SQL for the layer's bounding box (xmin, ymin, xmax, ymax) in EPSG:4326.

    ``estimated`` reads the planner statistics (``ST_EstimatedExtent``: instant on big tables
    after ANALYZE; an error on views, NULL without statistics); otherwise the exact extent.
    """
    g = ident(layer.geometry_column)
    if estimated:
        e = (f"ST_EstimatedExtent({literal(layer.schema)}, {literal(layer.table)}, "
             f"{literal(layer.geometry_column)})")
        return f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM {e} AS e"
    return (f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
            f"FROM (SELECT ST_Extent({g})::box2d AS e FROM {table_ref(layer)}) s")


def feature_collection(features: list[str], links: list[dict], number_returned: int) -> str:
    """Assemble a GeoJSON FeatureCollection from feature texts without re-parsing them."""
    import json

    head = json.dumps({"type": "FeatureCollection", "numberReturned": number_returned,
                       "links": links}, ensure_ascii=False)
    return head[:-1] + ', "features": [' + ",".join(features) + "]}"


def parse_cursor(layer: Layer, value: str) -> int | str:
    """The ``after`` cursor as the id column's type.

    >>> from layers import VECTOR_LAYERS
    >>> parse_cursor(VECTOR_LAYERS['parcels'], '42')
    42
    """
    if not id_is_integer(layer):
        return value
    try:
        return int(value)
    except ValueError:
        raise InvalidParameter(f"after must be a feature id (an integer), got {value!r}") from None


def check_limit(limit: int, maximum: int) -> int:
    if not 1 <= limit <= maximum:
        raise InvalidParameter(f"limit must be between 1 and {maximum}, got {limit}")
    return limit
