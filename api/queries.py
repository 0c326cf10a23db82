"""Planners' spatial queries in metres: what's here, nearest, within, intersects, zonal stats.

Every result is JSON (GeoJSON where features come back) and downloadable with
``f=geojson|csv|gpkg`` (or the Accept header). ``crs`` chooses the CRS of returned
geometries, ``point-crs`` the CRS of ``lon``/``lat`` (x/y in a projected CRS), and the body's
``crs`` (or the ``Content-Crs`` header) the CRS of a posted geometry.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any

import asyncpg
import numpy as np
import shapely
from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import current_principal
from api.deps import PoolDep, PrincipalDep, SettingsDep, get_pool
from api.exports import download_format, export_response
from gis.auth import Principal
from gis.catalog import vector_layer
from gis.errors import (
    InvalidParameter,
    NotFound,
    OutsideHue,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from gis.features import queries as q
from gis.features import rasterstats as rs
from gis.features.request import ApiCRS, parse_api_crs
from gis.raster import transformer
from gis.settings import Settings
from layers import RASTER_LAYERS, VECTOR_LAYERS, Layer

GEOJSON = "application/geo+json"
MAX_BODY_BYTES = 1 << 20
DEFAULT_LIMIT = 1000
MAX_EXPOSURE_PARCELS = 50_000
JSON_TYPES = ("application/json", "application/geo+json", "")
# The rasters what's-here reads, and the member each value goes to.
RASTER_VALUES = {"flood-depth": "flood_depth_m", "elevation": "elevation_m"}

Lon = Annotated[float, Query(description="Longitude (x in `point-crs`)")]
Lat = Annotated[float, Query(description="Latitude (y in `point-crs`)")]
PointCrs = Annotated[str | None, Query(alias="point-crs",
                                       description="CRS of lon/lat (default CRS84)")]
OutCrs = Annotated[str | None, Query(description="CRS of returned geometries (default CRS84)")]
Fmt = Annotated[str | None, Query(description="json (default), geojson, csv or gpkg")]
Limit = Annotated[int | None, Query(description="Most features in a JSON answer")]


@lru_cache(maxsize=64)
def _whats_here_sql(crs: ApiCRS, role: str) -> str:
    """The what's-here SQL per output CRS and role (fields depend on the role only)."""
    return q.whats_here_sql(crs, Principal(role))  # type: ignore[arg-type]


def _parameter(name: str, description: str, kind: str = "string",
               required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": {"type": kind}}


# What's-here reads its query itself (see the handler); its parameters, for the OpenAPI page.
WHATS_HERE_PARAMETERS = [
    _parameter("lon", "Longitude (x in `point-crs`)", "number", True),
    _parameter("lat", "Latitude (y in `point-crs`)", "number", True),
    _parameter("point-crs", "CRS of lon/lat (default CRS84)"),
    _parameter("crs", "CRS of returned geometries (default CRS84)"),
    _parameter("f", "json (default), geojson, csv or gpkg"),
]


def _number(params: Mapping[str, str], name: str) -> float:
    """The number ``name`` of a query string (400 when missing or not a number)."""
    value = params.get(name)
    if value is None:
        raise InvalidParameter(f"{name} is required")
    try:
        return float(value)
    except ValueError:
        raise InvalidParameter(f"{name} must be a number, got {value!r}") from None


def _out_crs(crs: str | None, fmt: str | None) -> ApiCRS:
    """The CRS of returned geometries; files (downloads) are always x/y (lon/lat) order, as
    GDAL writes and reads them, so EPSG:4326 is written as CRS84 there."""
    out = parse_api_crs(crs)
    return ApiCRS(out.srid) if fmt is not None else out


def _outside(where: str) -> OutsideHue:
    return OutsideHue(f"{where} is outside Huế City")


def _limit(limit: int | None, settings: Settings) -> int:
    value = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= value <= settings.max_items_limit:
        raise InvalidParameter(f"limit must be between 1 and {settings.max_items_limit}")
    return min(value, settings.max_items_limit)


async def read_json_body(request: Request) -> tuple[dict, ApiCRS]:
    """The JSON object of a POST (415 if not JSON, 413 beyond :data:`MAX_BODY_BYTES`) and the
    CRS of its geometry (``crs`` member, else ``Content-Crs``, else CRS84)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in JSON_TYPES:
        raise UnsupportedMediaType(f"send application/json, not {media}")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body is larger than {MAX_BODY_BYTES:,} bytes")
    raw = bytearray()
    async for part in request.stream():
        raw += part
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"the body is larger than {MAX_BODY_BYTES:,} bytes")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidParameter(f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidParameter("the body must be a JSON object")
    crs = body.get("crs") or request.headers.get("content-crs", "").strip().strip("<>") or None
    if crs is not None and not isinstance(crs, str):
        raise InvalidParameter("crs must be a CRS URI such as EPSG:9214")
    return body, parse_api_crs(crs)


async def _rows(pool: asyncpg.Pool, sql: str, *params: object) -> AsyncIterator[str]:
    """First column of every row, from a cursor (a download never holds the result)."""
    async with pool.acquire() as conn, conn.transaction():
        async for record in conn.cursor(sql, *params, prefetch=2000):
            yield record[0]


async def _iterate(items: Iterable[str]) -> AsyncIterator[str]:
    for item in items:
        yield item


def _geojson(geom: shapely.Geometry, crs: ApiCRS) -> dict:
    if crs.srid != 4326:
        t = transformer(4326, crs.srid)
        geom = shapely.transform(geom, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))
    if crs.lat_first:
        geom = shapely.transform(geom, lambda c: c[:, ::-1])
    return json.loads(shapely.to_geojson(shapely.set_precision(geom, 10.0 ** -crs.decimals)))


def _collection(features: str | list, crs: ApiCRS, **members: Any) -> Response:
    """A FeatureCollection from feature texts (or a JSON array text) and extra members."""
    head = json.dumps({"type": "FeatureCollection", **members}, ensure_ascii=False)
    body = features if isinstance(features, str) else "[" + ",".join(features) + "]"
    return Response(head[:-1] + ', "features": ' + body + "}", media_type=GEOJSON,
                    headers={"Content-Crs": f"<{crs.uri}>"})


async def _raster_path(pool: asyncpg.Pool, raster: str) -> str:
    if raster not in RASTER_LAYERS:
        raise NotFound(f"unknown raster {raster!r}; rasters: {', '.join(RASTER_LAYERS)}")
    path = await pool.fetchval("SELECT path FROM raster_datasets WHERE id = $1", raster)
    if path is None:
        raise NotFound(f"raster {raster!r} is not loaded (huegis load demo)")
    return path


def _download(fmt: str, features: AsyncIterator[str], layer: Layer | None,
              principal: Principal, crs: ApiCRS, name: str, extra: list[str],
              fields: list[str] | None = None, types: dict | None = None) -> Any:
    if layer is not None:
        fields, types = q.feature_fields(layer, principal, extra)
    return export_response(features, fmt, fields or extra, name, crs=crs.uri, types=types,
                           geometry_type=layer.geometry_type if layer else "Unknown")


@dataclass
class QueriesRouter:
    router: APIRouter = field(default_factory=lambda: APIRouter(prefix="/query",
                                                                tags=["Queries"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:  # noqa: C901 (route table)
        r = self.router

        @r.get("/whats-here", summary="What is at a point",
               openapi_extra={"parameters": WHATS_HERE_PARAMETERS})
        async def whats_here(request: Request) -> Response:
            """Ward, parcels, construction, flood depth, elevation and the nearest health,
            education and tourism feature (geodesic metres) at a point."""
            # The planner page's hot path: the parameters are read here, not by FastAPI's
            # dependency resolution (about 0.1 ms of the handler's 0.3 ms of Python).
            params = request.query_params
            lon, lat = _number(params, "lon"), _number(params, "lat")
            fmt = download_format(params.get("f"), request)
            out = _out_crs(params.get("crs"), fmt)
            x, y = q.parse_point(lon, lat, parse_api_crs(params.get("point-crs")))
            principal = await current_principal(request)
            pool = await get_pool(request)
            row = await pool.fetchrow(_whats_here_sql(out, principal.role), x, y)
            if row[0] is None:
                raise _outside(f"({lon}, {lat})")
            rasters = json.loads(row[6]) if row[6] else {}
            loaded = [rid for rid in RASTER_VALUES if rid in rasters]
            values = dict.fromkeys(RASTER_VALUES.values())
            values.update(zip((RASTER_VALUES[rid] for rid in loaded),
                              rs.values_at([rasters[rid]["path"] for rid in loaded], x, y),
                              strict=True))
            if fmt is None:  # the database's JSON texts, spliced: nothing parsed again
                nearest = ", ".join(f'"{k}": {v or "null"}'
                                    for k, v in zip(q.NEAREST_LAYERS, row[3:6], strict=True))
                head = json.dumps({"location": {"lon": x, "lat": y}, **values})
                body = (f'{head[:-1]}, "ward": {row[0]}, "parcels": {row[1]}, '
                        f'"construction": {row[2]}, "nearest": {{{nearest}}}}}')
                return Response(body.encode(), media_type="application/json",
                                headers={"Content-Crs": f"<{out.uri}>"})
            ward = json.loads(row[0])
            nearest = {k: json.loads(v) if v else None
                       for k, v in zip(q.NEAREST_LAYERS, row[3:6], strict=True)}
            point = {"type": "Feature", "geometry": _geojson(shapely.Point(x, y), out),
                     "properties": {"layer": "location", "ward_code": ward["gso_code"],
                                    "ward_name": ward["name"], **values}}
            rows = [point]
            for key, text in (("parcels", row[1]), ("construction", row[2])):
                rows += [{**ft, "properties": {"layer": key, **ft["properties"]}}
                         for ft in json.loads(text)]
            rows += [{**ft, "properties": {"layer": k, **ft["properties"]}}
                     for k, ft in nearest.items() if ft]
            names: list[str] = ["id"]
            for ft in rows:
                names += [n for n in ft["properties"] if n not in names]
            texts = [json.dumps(ft, ensure_ascii=False) for ft in rows]
            return await _download(fmt, _iterate(texts), None, principal, out, "whats-here",
                                   names)

        @r.get("/nearest", summary="The k nearest features")
        async def nearest(request: Request, pool: PoolDep, principal: PrincipalDep,
                          collection: str, lon: Lon, lat: Lat,
                          k: Annotated[int, Query(description="How many (1–1000)")] = 5,
                          point_crs: PointCrs = None, crs: OutCrs = None,
                          f: Fmt = None) -> Response:
            """The k features of a collection nearest a point, nearest first, with their
            geodesic `distance_m` (index-assisted KNN)."""
            fmt = download_format(f, request)
            layer = vector_layer(collection)
            q.check_k(k)
            out = _out_crs(crs, fmt)
            x, y = q.parse_point(lon, lat, parse_api_crs(point_crs))
            if not await pool.fetchval(q.in_city_sql(), x, y):
                raise _outside(f"({lon}, {lat})")
            sql = q.nearest_sql(layer, out, principal)
            if fmt is not None:
                return await _download(fmt, _rows(pool, sql, x, y, k), layer, principal, out,
                                       f"nearest-{layer.id}", ["distance_m"])
            rows = await pool.fetch(sql, x, y, k)
            return _collection([r[0] for r in rows], out, numberReturned=len(rows))

        @r.get("/within", summary="Features within a distance")
        async def within(request: Request, pool: PoolDep, principal: PrincipalDep,
                         settings: SettingsDep, collection: str, lon: Lon, lat: Lat,
                         distance: Annotated[float, Query(description="Metres (geodesic)")],
                         limit: Limit = None, point_crs: PointCrs = None,
                         crs: OutCrs = None, f: Fmt = None) -> Response:
            """The features of a collection within `distance` metres (geodesic) of a point,
            nearest first, with `distance_m`."""
            fmt = download_format(f, request)
            layer = vector_layer(collection)
            d = q.check_distance(distance)
            lim = _limit(limit, settings)
            out = _out_crs(crs, fmt)
            x, y = q.parse_point(lon, lat, parse_api_crs(point_crs))
            if not await pool.fetchval(q.in_city_sql(), x, y):
                raise _outside(f"({lon}, {lat})")
            args = (x, y, d, q.degrees_for(d, y))
            if fmt is not None:
                return await _download(fmt, _rows(pool, q.within_sql(layer, out, principal,
                                                                      None), *args),
                                       layer, principal, out, f"within-{layer.id}",
                                       ["distance_m"])
            rows = await pool.fetch(q.within_sql(layer, out, principal, lim + 1), *args)
            return _collection([r[0] for r in rows[:lim]], out,
                               numberReturned=min(len(rows), lim),
                               limited=len(rows) > lim)

        body_doc = {"requestBody": {"required": True, "content": {"application/json": {
            "schema": {"type": "object", "required": ["geometry"], "properties": {
                "collection": {"type": "string"}, "raster": {"type": "string"},
                "geometry": {"type": "object", "description": "GeoJSON geometry"},
                "crs": {"type": "string", "description": "CRS of the geometry"},
                "threshold": {"type": "number"}, "all_touched": {"type": "boolean"},
                "percentiles": {"type": "array", "items": {"type": "number"}}}}}}}}

        async def area_of(request: Request, pool: asyncpg.Pool,
                          allowed: tuple[str, ...] = q.GEOMETRY_TYPES
                          ) -> tuple[dict, shapely.Geometry]:
            body, in_crs = await read_json_body(request)
            geom = q.parse_geometry(body.get("geometry"), in_crs, allowed)
            if not await pool.fetchval(q.geometry_in_city_sql(), shapely.to_wkb(geom)):
                raise _outside("the geometry")
            return body, geom

        @r.post("/intersects", summary="Features intersecting a geometry, with areas",
                openapi_extra=body_doc)
        async def intersects(request: Request, pool: PoolDep, principal: PrincipalDep,
                             settings: SettingsDep, limit: Limit = None, crs: OutCrs = None,
                             f: Fmt = None) -> Response:
            """Features of `collection` intersecting `geometry`, with count, total area,
            area of the intersections (m², EPSG:9214) and areas by class (land use)."""
            fmt = download_format(f, request)
            out = _out_crs(crs, fmt)
            lim = _limit(limit, settings)
            body, geom = await area_of(request, pool)
            layer = vector_layer(str(body.get("collection")))
            wkb = shapely.to_wkb(geom)
            if fmt is not None:
                return await _download(
                    fmt, _rows(pool, q.intersects_features_sql(layer, out, principal), wkb),
                    layer, principal, out, f"intersects-{layer.id}",
                    ["area_m2", "intersection_m2"])
            row = await pool.fetchrow(q.intersects_sql(layer, out, principal, lim), wkb)
            summary = json.loads(row[1])
            klass = q.class_field(layer)
            members: dict[str, Any] = {"numberMatched": summary["count"],
                                       "numberReturned": min(summary["count"], lim),
                                       "summary": summary}
            if klass:
                members["by_" + klass] = json.loads(row[2])
            return _collection(row[3], out, **members)

        @r.post("/zonal-stats", summary="Raster statistics inside a polygon",
                openapi_extra=body_doc)
        async def zonal_stats(request: Request, pool: PoolDep, principal: PrincipalDep,
                              crs: OutCrs = None, f: Fmt = None) -> Response:
            """Count, min, max, mean, percentiles of a raster (`raster`) inside `geometry`
            (pixel centres; every touched pixel with `all_touched`), and the area above
            `threshold` (e.g. flood depth > 0.5 m)."""
            fmt = download_format(f, request)
            out = _out_crs(crs, fmt)
            body, geom = await area_of(request, pool, ("Polygon", "MultiPolygon"))
            path = await _raster_path(pool, str(body.get("raster")))
            pcts = body.get("percentiles", list(rs.DEFAULT_PERCENTILES))
            threshold = body.get("threshold")
            if (not isinstance(pcts, list) or len(pcts) > 20
                    or not all(isinstance(p, int | float) and 0 <= p <= 100 for p in pcts)):
                raise InvalidParameter("percentiles must be a list of at most 20 numbers "
                                       "between 0 and 100")
            if threshold is not None and not isinstance(threshold, int | float):
                raise InvalidParameter("threshold must be a number")
            stats = await run_in_threadpool(  # numpy work off the event loop
                lambda: rs.zonal_stats(rs.open_raster(path), geom, pcts, threshold,
                                       bool(body.get("all_touched", False))))
            doc = {"raster": body["raster"], "units": RASTER_LAYERS[body["raster"]].units,
                   **stats}
            if fmt is None:
                return Response(json.dumps(doc), media_type="application/json")
            flat = {k: v for k, v in doc.items() if k != "percentiles"}
            flat.update(doc["percentiles"])
            feature = {"type": "Feature", "geometry": _geojson(geom, out), "properties": flat}
            return await _download(fmt, _iterate([json.dumps(feature)]), None, principal, out,
                                   "zonal-stats", list(flat))

        @r.get("/raster-value", summary="The value of a raster at a point")
        async def raster_value(request: Request, pool: PoolDep, principal: PrincipalDep,
                               raster: str, lon: Lon, lat: Lat, point_crs: PointCrs = None,
                               crs: OutCrs = None, f: Fmt = None) -> Response:
            """The value of the raster cell containing a point (null on nodata)."""
            fmt = download_format(f, request)
            out = _out_crs(crs, fmt)
            x, y = q.parse_point(lon, lat, parse_api_crs(point_crs))
            if raster not in RASTER_LAYERS:
                await _raster_path(pool, raster)  # 404 naming the rasters
            path, inside = await pool.fetchrow(q.raster_point_sql(), x, y, raster)
            if path is None:
                await _raster_path(pool, raster)  # 404: not loaded
            if not inside:
                raise _outside(f"({lon}, {lat})")
            doc = {"raster": raster, "units": RASTER_LAYERS[raster].units, "lon": x, "lat": y,
                   "value": rs.value_at(rs.open_raster(path), x, y)}
            if fmt is None:
                return Response(json.dumps(doc), media_type="application/json")
            feature = {"type": "Feature", "geometry": _geojson(shapely.Point(x, y), out),
                       "properties": doc}
            return await _download(fmt, _iterate([json.dumps(feature)]), None, principal, out,
                                   "raster-value", list(doc))

        @r.post("/flood-exposure", summary="Parcels of an area ranked by flood depth",
                openapi_extra=body_doc)
        async def flood_exposure(request: Request, pool: PoolDep, principal: PrincipalDep,
                                 settings: SettingsDep, limit: Limit = None,
                                 crs: OutCrs = None, f: Fmt = None) -> Response:
            """The parcels intersecting `geometry` ranked by mean, then max, flood depth
            (area-weighted over the raster cells they overlap), with totals by land use."""
            fmt = download_format(f, request)
            out = _out_crs(crs, fmt)
            lim = _limit(limit, settings)
            body, geom = await area_of(request, pool, ("Polygon", "MultiPolygon"))
            path = await _raster_path(pool, str(body.get("raster", "flood-depth")))
            rows = await pool.fetch(q.exposure_parcels_sql(out, principal,
                                                           MAX_EXPOSURE_PARCELS + 1),
                                    shapely.to_wkb(geom))
            if len(rows) > MAX_EXPOSURE_PARCELS:
                raise InvalidParameter(f"the area holds more than {MAX_EXPOSURE_PARCELS:,} "
                                       "parcels: narrow it down")
            geoms = shapely.from_wkb(np.array([bytes(r[1]) for r in rows], dtype=object))
            mean, peak = await run_in_threadpool(
                lambda: rs.overlap_stats(rs.open_raster(path), geoms))
            ranked, totals, groups = rs.rank_exposure(
                [json.loads(r[0]) for r in rows], [r[2] for r in rows],
                np.array([r[3] for r in rows], dtype=float), mean, peak)
            parcels = VECTOR_LAYERS["parcels"]
            if fmt is not None:
                texts = (json.dumps(ft, ensure_ascii=False) for ft in ranked)
                return await _download(fmt, _iterate(texts), parcels, principal, out,
                                       "flood-exposure",
                                       ["mean_depth_m", "max_depth_m", "rank"])
            return _collection([json.dumps(ft, ensure_ascii=False) for ft in ranked[:lim]],
                               out, numberMatched=len(ranked),
                               numberReturned=min(len(ranked), lim), totals=totals,
                               by_land_use=groups)
