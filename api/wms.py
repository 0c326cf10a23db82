"""WMS 1.3.0 on the Mapnik renderer: GetCapabilities, GetMap, GetFeatureInfo, GetLegendGraphic."""

from __future__ import annotations

import contextlib
import io
import json
import time
from dataclasses import dataclass, field

import anyio
from fastapi import APIRouter, Request, Response

from api.deps import base_url, get_pool
from api.maps import draw, image_response, raster_file, renderer
from gis import render
from gis.errors import DatabaseUnavailable, HueGISError
from gis.features import extent_sql
from gis.render import wms
from gis.settings import Settings
from layers import ATTRIBUTION, CATALOG, RasterLayer

XML = "text/xml; charset=utf-8"
CAPABILITIES_TTL_S = 300


def service_exception(exc: HueGISError) -> Response:
    """A ``ServiceExceptionReport`` (400 for bad requests, 503 while the database is down)."""
    e = wms.as_wms_exception(exc)
    return Response(wms.exception_xml(e), status_code=e.status, media_type=XML)


async def layer_extents(request: Request, pool) -> dict[str, tuple[float, float, float, float]]:
    """Lon/lat extent of every layer (planner estimate, else exact; rasters from
    ``raster_datasets``), cached for a few minutes per process."""
    state = request.app.state
    cached = getattr(state, "huegis_wms_extents", None)
    if cached and time.monotonic() - cached[0] < CAPABILITIES_TTL_S:
        return cached[1]
    out: dict[str, tuple[float, float, float, float]] = {}
    for layer in CATALOG.values():
        row = None
        if isinstance(layer, RasterLayer):
            with contextlib.suppress(Exception):
                row = await pool.fetchrow(
                    "SELECT ST_XMin(bounds), ST_YMin(bounds), ST_XMax(bounds), ST_YMax(bounds) "
                    "FROM raster_datasets WHERE id = $1", layer.id)
        else:
            for estimated in (True, False):
                with contextlib.suppress(Exception):
                    row = await pool.fetchrow(extent_sql(layer, estimated=estimated))
                if row is not None and None not in tuple(row):
                    break
        if row is not None and None not in tuple(row):
            w, s, e, n = (float(v) for v in row)
            if w < e and s < n:
                out[layer.id] = (w, s, e, n)
    state.huegis_wms_extents = (time.monotonic(), out)
    return out


_legend_sizes: dict[str, tuple[int, int]] = {}


def legend_sizes() -> dict[str, tuple[int, int]]:
    """Pixel size of each layer's legend image (for ``LegendURL``), computed once."""
    if not _legend_sizes:
        from PIL import Image

        for layer in CATALOG.values():
            with Image.open(io.BytesIO(render.legend_png(layer))) as img:
                _legend_sizes[layer.id] = img.size
    return _legend_sizes


async def feature_info(request: Request, settings: Settings, pool, p: wms.Params) -> Response:
    q = wms.parse_info_request(p)
    lon, lat = q.lon, q.lat
    features: list[dict] = []
    for layer in q.layers:
        if isinstance(layer, RasterLayer):
            path = await raster_file(await renderer(request, settings, pool), pool, settings,
                                     layer)
            try:
                value = await anyio.to_thread.run_sync(render.value_at, path, lon, lat)
            except HueGISError:
                continue  # outside the raster: nothing here
            features.append(wms.feature(layer.id, None, {"value": value, "units": layer.units},
                                        {"type": "Point", "coordinates": [lon, lat]}))
            continue
        tolerance = 1 if layer.is_polygonal else wms.INFO_TOLERANCE_PX
        box = await anyio.to_thread.run_sync(wms.search_box, q.map.view, q.i, q.j, tolerance)
        rows = await pool.fetch(wms.feature_info_sql(layer), *box, lon, lat, q.count)
        for row in rows:
            features.append(wms.feature(layer.id, row["id"], json.loads(row["props"]),
                                        json.loads(row["geom"]) if row["geom"] else None))
    body, media_type = wms.format_info(features, q.format)
    return Response(body, media_type=media_type)


@dataclass
class WMSRouter:
    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["WMS"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        @self.router.get(
            "/wms", summary="WMS 1.3.0", response_class=Response,
            responses={200: {"content": {"text/xml": {}, "image/png": {}, "image/jpeg": {},
                                         "application/json": {}, "text/html": {},
                                         "text/plain": {}}},
                       400: {"description": "ServiceExceptionReport (XML)",
                             "content": {"text/xml": {}}}})
        async def wms_service(request: Request) -> Response:
            """Web Map Service 1.3.0 (GetCapabilities, GetMap, GetFeatureInfo,
            GetLegendGraphic) for desktop GIS and older portals; errors are
            ServiceExceptionReport XML."""
            settings: Settings = request.app.state.settings
            p = wms.Params(request.query_params.multi_items())
            try:
                service = p.get("SERVICE")
                if service is not None and service.strip().upper() not in ("WMS", ""):
                    raise wms.WMSException("InvalidParameterValue",
                                           f"SERVICE must be WMS, got {service!r}", "SERVICE")
                operation = p.require("REQUEST").lower()
                if operation == "getcapabilities":
                    pool = await get_pool(request)
                    extents = await layer_extents(request, pool)
                    sizes = await anyio.to_thread.run_sync(legend_sizes)
                    url = base_url(request, settings) + "/wms"
                    return Response(wms.capabilities_xml(url, extents, sizes, ATTRIBUTION),
                                    media_type=XML)
                if operation == "getmap":
                    req = wms.parse_map_request(p)
                    pool = await get_pool(request)
                    data = await draw(request, settings, pool, req.view, req.layers,
                                      req.output)
                    return image_response(request, data, req.output.media_type)
                if operation == "getfeatureinfo":
                    return await feature_info(request, settings, await get_pool(request), p)
                if operation == "getlegendgraphic":
                    layer = wms.public_layer(p.require("LAYER"))
                    fmt = (p.get("FORMAT") or "image/png").strip().lower()
                    if fmt != "image/png":
                        raise wms.WMSException("InvalidFormat", "legends are image/png",
                                               "FORMAT")
                    if (p.get("STYLE") or "default").strip() not in ("", "default"):
                        raise wms.WMSException("StyleNotDefined", "each layer has one style, "
                                               "'default'", "STYLE")
                    lang = (p.get("LANGUAGE") or "vi").strip().lower()[:2]
                    lang = lang if lang in ("vi", "en") else "vi"
                    data = await anyio.to_thread.run_sync(lambda: render.legend_png(layer, lang))
                    return image_response(request, data)
                raise wms.WMSException("OperationNotSupported",
                                       f"unknown REQUEST {p.get('REQUEST')!r}; use "
                                       "GetCapabilities, GetMap, GetFeatureInfo or "
                                       "GetLegendGraphic", "REQUEST")
            except HueGISError as exc:
                return service_exception(exc)
            except OSError as exc:  # the database went away mid-request
                return service_exception(DatabaseUnavailable(f"database unavailable: {exc}"))

