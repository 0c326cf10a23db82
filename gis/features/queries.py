"""Planners' spatial queries in metres: what is here, nearest, within, intersects.

Every function here builds SQL from the catalog (identifiers quoted, values ``$n``
parameters) or validates an input; nothing here talks to the database, so the SQL can be
read and tested on its own. Distances are geodesic (``geography``, WGS 84 spheroid), areas
are measured in VN-2000 / TM-3 107-00 (EPSG:9214), as the importer derives ``area_m2``.

Nearest neighbours are index-assisted: ``<->`` on the GiST index finds the k nearest in
degrees, which bounds the search radius; the features inside 1.06 × that radius (a degree of
longitude and one of latitude differ by less than 4 % at Huế's latitude) are then ranked by
their true geodesic distance, so the answer is exact and still uses the index.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import shapely

from gis.errors import InvalidGeometry, InvalidParameter
from gis.features.request import CRS84, ApiCRS
from gis.raster import transformer
from gis.sqlbuild import id_is_integer, ident, source_ref, visible_fields
from layers import VECTOR_LAYERS, Layer

if TYPE_CHECKING:
    from gis.auth import Principal

MAX_K = 1000
MAX_DISTANCE_M = 50_000.0
MAX_VERTICES = 100_000
METRIC_SRID = 9214
# Ratio bound between metres-per-degree in any two directions at Huế (< 4 %), with margin.
KNN_RADIUS_FACTOR = 1.06
NEAREST_LAYERS = ("health", "education", "tourism")
GEOMETRY_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                  "MultiPolygon")

POINT = "ST_SetSRID(ST_MakePoint($1, $2), 4326)"


def in_city(geom: str) -> str:
    """SQL boolean: ``geom`` touches Huế. The wards partition the city, so this is an
    index-assisted test on ``ward_pieces``, the wards cut into pieces of at most 64 vertices
    (migration 0006; faster than a test against whole ward outlines or the city's)."""
    return f"EXISTS (SELECT 1 FROM ward_pieces w WHERE ST_Intersects(w.geom, {geom}))"


# --------------------------------------------------------------------------------- inputs
def parse_point(lon: float, lat: float, crs: ApiCRS = CRS84) -> tuple[float, float]:
    """A location (``lon``/``lat``, or easting/northing in a projected ``crs``) as lon/lat.

    >>> parse_point(107.5775, 16.469)
    (107.5775, 16.469)
    >>> from gis.features.request import parse_api_crs
    >>> [round(v, 4) for v in parse_point(562270.0, 1820900.0, parse_api_crs("EPSG:9214"))]
    [107.585, 16.463]
    >>> parse_point(200.0, 16.0)
    Traceback (most recent call last):
    ...
    gis.errors.InvalidParameter: lon/lat (200.0, 16.0) is not a valid position
    """
    x, y = float(lon), float(lat)
    if not (math.isfinite(x) and math.isfinite(y)):
        raise InvalidParameter(f"lon/lat must be finite numbers, got ({lon}, {lat})")
    if crs.srid != 4326:
        x, y = transformer(crs.srid, 4326).transform(x, y)
    if not (-180 <= x <= 180 and -90 <= y <= 90 and math.isfinite(x) and math.isfinite(y)):
        raise InvalidParameter(f"lon/lat ({lon}, {lat}) is not a valid position")
    return (x, y)


def check_k(k: int) -> int:
    if not 1 <= k <= MAX_K:
        raise InvalidParameter(f"k must be between 1 and {MAX_K}, got {k}")
    return k


def check_distance(distance: float) -> float:
    if not (math.isfinite(distance) and 0 < distance <= MAX_DISTANCE_M):
        raise InvalidParameter(f"distance must be more than 0 and at most {MAX_DISTANCE_M:g} "
                               f"metres, got {distance}")
    return float(distance)


def degrees_for(distance_m: float, lat: float) -> float:
    """Degrees that certainly cover ``distance_m`` metres around latitude ``lat`` (an index
    prefilter for geodesic ``ST_DWithin``).

    >>> round(degrees_for(1000, 16.47), 5)
    0.00951
    """
    per_degree = min(110_574.0, 111_319.0 * math.cos(math.radians(min(abs(lat) + 1, 89))))
    return distance_m / per_degree * 1.01 + 1e-9


def parse_geometry(value: object, crs: ApiCRS = CRS84,
                   allowed: Sequence[str] = GEOMETRY_TYPES) -> shapely.Geometry:
    """A GeoJSON geometry object (in ``crs``) as a valid shapely geometry in lon/lat.

    Raises :class:`InvalidGeometry` (400) for anything that is not a valid, non-empty
    geometry of an ``allowed`` type with at most :data:`MAX_VERTICES` vertices: the
    message gives GEOS's reason (e.g. a self-intersection and where).

    >>> parse_geometry({"type": "Point", "coordinates": [107.5775, 16.469]}).wkt
    'POINT (107.5775 16.469)'
    >>> parse_geometry({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1],
    ...                 [0, 0]]]})
    Traceback (most recent call last):
    ...
    gis.errors.InvalidGeometry: invalid geometry: Self-intersection[0.5 0.5]
    """
    if not isinstance(value, Mapping) or value.get("type") not in allowed:
        raise InvalidGeometry(f"geometry must be a GeoJSON object of type "
                              f"{', '.join(allowed)}")
    try:
        geom = shapely.from_geojson(json.dumps(value))
    except (shapely.errors.GEOSException, ValueError, TypeError) as exc:
        raise InvalidGeometry(f"geometry is not valid GeoJSON: {exc}") from None
    if geom is None or geom.is_empty:
        raise InvalidGeometry("geometry is empty")
    if shapely.get_num_coordinates(geom) > MAX_VERTICES:
        raise InvalidGeometry(f"geometry has more than {MAX_VERTICES:,} vertices")
    if not np.isfinite(shapely.get_coordinates(geom)).all():
        raise InvalidGeometry("geometry has coordinates that are not finite numbers")
    if crs.lat_first:
        geom = shapely.transform(geom, lambda c: c[:, ::-1])
    if crs.srid != 4326:
        t = transformer(crs.srid, 4326)
        geom = shapely.transform(geom, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))
    if not shapely.is_valid(geom):
        raise InvalidGeometry(f"invalid geometry: {shapely.is_valid_reason(geom)}")
    x0, y0, x1, y1 = geom.bounds
    if not (-180 <= x0 and x1 <= 180 and -90 <= y0 and y1 <= 90):
        raise InvalidGeometry("geometry is outside the range of longitudes and latitudes")
    return geom


# ------------------------------------------------------------------------------ SQL pieces
def out_geometry(expr: str, crs: ApiCRS) -> str:
    """GeoJSON of ``expr`` (EPSG:4326) in the output CRS, axis order included."""
    g = expr if crs.srid == 4326 else f"ST_Transform({expr}, {int(crs.srid)})"
    if crs.lat_first:
        g = f"ST_FlipCoordinates({g})"
    return f"ST_AsGeoJSON({g}, {crs.decimals})::json"


def feature_json(layer: Layer, alias: str, crs: ApiCRS, principal: Principal | None,
                 extra: Mapping[str, str] | None = None) -> str:
    """``json_build_object`` of one GeoJSON Feature: the fields ``principal`` may read, then
    ``extra`` (name → SQL expression)."""
    extra = extra or {}
    props = [f"'{name}', {alias}.{ident(name)}"
             for name in visible_fields(layer, principal=principal) if name not in extra]
    props += [f"'{name}', {expr}" for name, expr in extra.items()]
    return (f"json_build_object('type', 'Feature', 'id', {alias}.{ident(layer.id_column)}, "
            f"'geometry', {out_geometry(f'{alias}.{ident(layer.geometry_column)}', crs)}, "
            f"'properties', json_build_object({', '.join(props)}))")


def feature_fields(layer: Layer, principal: Principal | None,
                   extra: Sequence[str] = ()) -> tuple[list[str], dict[str, str]]:
    """Columns and catalog types of a query's features (for CSV/GeoPackage downloads)."""
    names = visible_fields(layer, principal=principal)
    types = {f.name: f.type for f in layer.fields if f.name in names}
    if layer.id_column not in names:  # the feature id, as a column
        names.insert(0, "id")
        types["id"] = "int" if id_is_integer(layer) else "text"
    return names + [n for n in extra if n not in names], {**types, **dict.fromkeys(extra,
                                                                                   "float")}


def metric_area(expr: str) -> str:
    return f"ST_Area(ST_Transform({expr}, {METRIC_SRID}))"


def _geodesic(alias: str, layer: Layer, point: str) -> str:
    return f"ST_Distance({alias}.{ident(layer.geometry_column)}::geography, {point}::geography)"


def knn_rows(layer: Layer, point: str, k: str, principal: Principal | None = None) -> str:
    """Subquery: the ``k`` features nearest ``point`` by geodesic distance (column
    ``distance_m``), nearest first, using the GiST index (see the module's note)."""
    g = ident(layer.geometry_column)
    tbl = source_ref(layer, principal)
    radius = (f"(SELECT coalesce(max(d), 0) * {KNN_RADIUS_FACTOR} + 1e-9 FROM "
              f"(SELECT n.{g} <-> {point} AS d FROM {tbl} n ORDER BY n.{g} <-> {point} "
              f"LIMIT {k}) knn)")
    return (f"(SELECT t.*, {_geodesic('t', layer, point)} AS distance_m FROM {tbl} t "
            f"WHERE ST_DWithin(t.{g}, {point}, {radius}) "
            f"ORDER BY distance_m, t.{ident(layer.id_column)} LIMIT {k})")


def nearest_sql(layer: Layer, crs: ApiCRS, principal: Principal | None) -> str:
    """Features nearest ``($1, $2)`` lon/lat, ``$3`` of them: one row each
    ``(feature_text,)``."""
    feature = feature_json(layer, "s", crs, principal, {"distance_m": "s.distance_m"})
    return (f"SELECT {feature}::text "
            f"FROM {knn_rows(layer, POINT, '$3', principal)} s ORDER BY s.distance_m, "
            f"s.{ident(layer.id_column)}")


def within_sql(layer: Layer, crs: ApiCRS, principal: Principal | None,
               limit: int | None) -> str:
    """Features within ``$3`` metres (geodesic) of ``($1, $2)``; ``$4`` is the degree
    prefilter (:func:`degrees_for`). Rows: ``(feature_text,)``, nearest first."""
    g = ident(layer.geometry_column)
    feature = feature_json(layer, "s", crs, principal, {"distance_m": "s.distance_m"})
    return (f"SELECT {feature}::text FROM (SELECT t.*, {_geodesic('t', layer, POINT)} AS "
            f"distance_m FROM {source_ref(layer, principal)} t "
            f"WHERE ST_DWithin(t.{g}, {POINT}, $4) AND "
            f"ST_DWithin(t.{g}::geography, {POINT}::geography, $3)) s "
            f"ORDER BY s.distance_m, s.{ident(layer.id_column)}"
            + (f" LIMIT {int(limit)}" if limit is not None else ""))


def in_city_sql() -> str:
    """Whether ``($1, $2)`` lon/lat is inside the city (one boolean)."""
    return f"SELECT {in_city(POINT)}"


def geometry_in_city_sql() -> str:
    """Whether the geometry ``$1`` (WKB, EPSG:4326) touches the city at all."""
    return f"SELECT {in_city('ST_GeomFromWKB($1, 4326)')}"


def class_field(layer: Layer) -> str | None:
    """The public field areas are grouped by (the style's classes: land use for parcels)."""
    name = layer.style.classify
    if name and layer.has_field(name) and layer.field(name).public:
        return name
    return None


def _matches(layer: Layer, principal: Principal | None = None) -> str:
    """Rows of ``layer`` intersecting the geometry ``$1`` (WKB, EPSG:4326), with their area
    ``area_m2_`` and the area ``ix_`` of their part inside it (both in EPSG:9214)."""
    g = ident(layer.geometry_column)
    q = "ST_GeomFromWKB($1, 4326)"
    return (f"SELECT t.*, {metric_area(f't.{g}')} AS area_m2_, "
            f"CASE WHEN ST_CoveredBy(t.{g}, {q}) THEN {metric_area(f't.{g}')} "
            f"ELSE {metric_area(f'ST_Intersection(t.{g}, {q})')} END AS ix_ "
            f"FROM {source_ref(layer, principal)} t WHERE ST_Intersects(t.{g}, {q})")


def _area_feature(layer: Layer, crs: ApiCRS, principal: Principal | None) -> str:
    return feature_json(layer, "f", crs, principal,
                        {"area_m2": "f.area_m2_", "intersection_m2": "f.ix_"})


def intersects_sql(layer: Layer, crs: ApiCRS, principal: Principal | None,
                   limit: int | None) -> str:
    """Features intersecting the geometry ``$1`` (WKB, EPSG:4326) with aggregates, one row:
    ``(in_city, summary_json, groups_json, features_json)``. ``area_m2`` is each feature's
    area, ``intersection_m2`` the part inside the query geometry (both EPSG:9214); groups
    are by the layer's class field (land use for parcels)."""
    q = "ST_GeomFromWKB($1, 4326)"
    idc = ident(layer.id_column)
    klass = class_field(layer)
    group = (f"(SELECT coalesce(json_agg(json_build_object('{klass}', k, 'count', n, "
             "'area_m2', a, 'intersection_m2', ix) ORDER BY ix DESC, k), '[]') FROM "
             f"(SELECT m.{ident(klass)} AS k, count(*) AS n, sum(m.area_m2_) AS a, "
             f"sum(m.ix_) AS ix FROM m GROUP BY m.{ident(klass)}) grp)") if klass else "NULL"
    return (
        f"WITH m AS MATERIALIZED ({_matches(layer, principal)}) "
        f"SELECT {in_city(q)}, "
        "(SELECT json_build_object('count', count(*), 'total_area_m2', coalesce(sum(area_m2_), "
        "0), 'intersection_area_m2', coalesce(sum(ix_), 0), 'query_area_m2', "
        f"{metric_area(q)}) FROM m)::text, {group}::text, "
        f"(SELECT coalesce(json_agg(feat ORDER BY fid), '[]') FROM (SELECT "
        f"{_area_feature(layer, crs, principal)} AS feat, f.{idc} AS fid FROM m f "
        f"ORDER BY f.{idc}" + (f" LIMIT {int(limit)}" if limit is not None else "")
        + ") fs)::text"
    )


def intersects_features_sql(layer: Layer, crs: ApiCRS, principal: Principal | None) -> str:
    """Every feature intersecting ``$1`` (a download): rows ``(feature_text,)``."""
    return (f"SELECT {_area_feature(layer, crs, principal)}::text "
            f"FROM ({_matches(layer, principal)}) f "
            f"ORDER BY f.{ident(layer.id_column)}")


def whats_here_sql(crs: ApiCRS, principal: Principal | None) -> str:
    """Everything about the point ``($1, $2)`` lon/lat in one round trip, one row:
    ``(ward, parcels, construction, health, education, tourism, rasters)`` as JSON texts.

    The ward comes from ``ward_pieces`` (the wards cut into pieces of at most 64 vertices,
    migration 0006), the parcels and construction at the point from their GiST indexes, the
    nearest health, education and tourism feature by index-assisted KNN, the geodesic
    distance computed for the few candidates only. The point is built once, in a subquery
    the planner cannot fold into constants (``OFFSET 0``): every plan of the prepared
    statement then costs the same, so PostgreSQL keeps one generic plan instead of planning
    every execution again (planning this query costs more than running it).
    """
    parcels, construction = VECTOR_LAYERS["parcels"], VECTOR_LAYERS["construction"]
    point = "p.g"
    ward = ("(SELECT json_build_object('gso_code', w.gso_code, 'name', w.name) "
            f"FROM ward_pieces w WHERE ST_Intersects(w.geom, {point}) "
            "ORDER BY w.gso_code LIMIT 1)")

    def at_point(layer: Layer) -> str:
        g = ident(layer.geometry_column)
        feature = feature_json(layer, "t", crs, principal)
        return (f"(SELECT coalesce(json_agg({feature} ORDER BY t.{ident(layer.id_column)}), "
                f"'[]') FROM {source_ref(layer, principal)} t "
                f"WHERE ST_Intersects(t.{g}, {point}))")

    def nearest(layer_id: str) -> str:
        layer = VECTOR_LAYERS[layer_id]
        feature = feature_json(layer, "s", crs, principal, {"distance_m": "s.distance_m"})
        return f"(SELECT {feature} FROM {knn_rows(layer, point, '1', principal)} s)"

    rasters = ("(SELECT json_object_agg(r.id, json_build_object('path', r.path, 'nodata', "
               "r.nodata)) FROM raster_datasets r)")
    cols = [ward, at_point(parcels), at_point(construction),
            *(nearest(k) for k in NEAREST_LAYERS), rasters]
    return ("SELECT " + ", ".join(f"{c}::text" for c in cols)
            + f" FROM (SELECT {POINT} AS g OFFSET 0) p")


def exposure_parcels_sql(crs: ApiCRS, principal: Principal | None, limit: int) -> str:
    """Parcels intersecting ``$1`` (WKB, EPSG:4326), at most ``limit``: rows
    ``(feature_text, wkb, land_use, area_m2)``, areas in EPSG:9214."""
    parcels = VECTOR_LAYERS["parcels"]
    g = ident(parcels.geometry_column)
    q = "ST_GeomFromWKB($1, 4326)"
    return (f"SELECT {feature_json(parcels, 't', crs, principal)}::text, ST_AsBinary(t.{g}), "
            f"t.land_use, {metric_area(f't.{g}')} FROM {source_ref(parcels, principal)} t "
            f"WHERE ST_Intersects(t.{g}, {q}) ORDER BY t.{ident(parcels.id_column)} "
            f"LIMIT {int(limit)}")


def raster_point_sql() -> str:
    """One row ``(path, in_city)``: the file of raster ``$3`` (NULL when not loaded) and
    whether ``($1, $2)`` lon/lat is in Huế."""
    return (f"SELECT (SELECT r.path FROM raster_datasets r WHERE r.id = $3), "
            f"{in_city(POINT)}")
