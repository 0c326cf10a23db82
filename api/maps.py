"""Rendered maps: PNG tiles (OGC API Maps), maps for print, legends and raster tiles."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam

from api.deps import AnyLayerDep, PoolDep, SettingsDep, base_url
from api.tiles import tile_response
from gis import render
from gis.catalog import any_layer
from gis.errors import DataMissing, InvalidParameter
from gis.render.views import (
    MAP_TMS,
    CRSRef,
    map_tms,
    parse_tile_col,
    parse_xy_bbox,
    tile_view,
    transform_bbox,
)
from gis.settings import Settings
from gis.tiles.cache import TileKey, etag_of
from gis.tiles.metadata import tms_crs, tms_uri
from layers import VECTOR_LAYERS, Layer, RasterLayer

PNG = "image/png"
CACHE_CONTROL = "public, max-age=60"
# Bounds of the Huế data (lon/lat), the default extent of a map without a bbox.
HUE_BBOX = (107.0, 15.95, 108.25, 16.8)
DEFAULT_WIDTH = 1024
RENDER_THREADS = render.RENDER_THREADS  # Mapnik's connection pool is sized for as many

ColormapQ = Annotated[str | None, Query(description="rio-tiler colormap name (rasters)")]
RescaleQ = Annotated[str | None, Query(description="'min,max' mapped onto the colormap")]
CollectionsQ = Annotated[str | None, Query(
    description="Comma-separated collection ids, drawn in order (first at the bottom)")]


def image_response(request: Request, data: bytes, media_type: str = PNG,
                   cache_control: str = CACHE_CONTROL) -> Response:
    """An image with its ETag and Cache-Control; 304 when ``If-None-Match`` matches."""
    tag = etag_of(data)
    headers = {"ETag": tag, "Cache-Control": cache_control}
    inm = request.headers.get("if-none-match")
    if inm and (inm.strip() == "*" or tag in [t.strip() for t in inm.split(",")]):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=media_type, headers=headers)


async def renderer(request: Request, settings: Settings, pool) -> render.Renderer:
    """The app's renderer (one per process, made on first use) and its thread limiter."""
    state = request.app.state
    r = getattr(state, "huegis_renderer", None)
    if r is None:
        rows = await pool.fetch("SELECT DISTINCT table_name FROM information_schema.columns "
                                "WHERE column_name = 'geom_3857'")
        r = render.Renderer(settings.dsn,
                            stored_3857=frozenset(row["table_name"] for row in rows))
        state.huegis_render_limiter = anyio.CapacityLimiter(RENDER_THREADS)
        state.huegis_renderer = r
    return r


async def raster_file(r: render.Renderer, pool, settings: Settings, layer: RasterLayer) -> Path:
    """The COG of a raster layer: as registered in ``raster_datasets``, else in the raster
    directory; ``DataMissing`` (503) when neither exists."""
    path = r.raster_path.get(layer.id)
    if path is not None and path.exists():
        return path
    registered = await pool.fetchval("SELECT path FROM raster_datasets WHERE id = $1", layer.id)
    for candidate in ([Path(registered)] if registered else []) + [
            settings.raster_dir / layer.filename]:
        if candidate.exists():
            r.raster_path[layer.id] = candidate
            return candidate
    raise DataMissing(f"raster {layer.id!r} is not loaded (huegis load demo makes it)")


def parse_collections(text: str | None) -> list[Layer | RasterLayer]:
    """Layers named in ``collections`` (404 for an unknown one); all vector layers if absent."""
    if text is None or not text.strip():
        return list(VECTOR_LAYERS.values())
    names = [n.strip() for n in text.split(",") if n.strip()]
    return [any_layer(n) for n in dict.fromkeys(names)]


async def draw(request: Request, settings: Settings, pool, view: render.MapView,
               layers: list[Layer | RasterLayer], output: render.Output | None = None,
               labels: bool = True, colormap: str | None = None,
               rescale: str | None = None) -> bytes:
    """Render in a worker thread (at most ``RENDER_THREADS`` at once per process)."""
    r = await renderer(request, settings, pool)
    styles = {}
    for layer in layers:
        if isinstance(layer, RasterLayer):
            styles[layer.id] = render.RasterStyle.parse(layer, colormap, rescale)
            await raster_file(r, pool, settings, layer)

    def work() -> bytes:
        return r.render(view, layers, output or render.Output(), labels=labels,
                        raster_styles=styles)

    return await anyio.to_thread.run_sync(work, limiter=request.app.state.huegis_render_limiter)


def map_tileset(title: str, base: str, prefix: str, tms_id: str, query: str = "") -> dict:
    """Tileset metadata of PNG map tiles under ``base + prefix`` (``…/map/tiles``)."""
    map_tms(tms_id)
    return {
        "title": f"{title} ({tms_id})", "dataType": "map", "crs": tms_crs(tms_id),
        "tileMatrixSetURI": tms_uri(tms_id),
        "links": [
            {"rel": "self", "type": "application/json",
             "href": f"{base}{prefix}/{tms_id}{query}"},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
             "type": "application/json", "href": f"{base}/tileMatrixSets/{tms_id}"},
            {"rel": "item", "type": PNG, "templated": True, "title": "256 px (@2x: 512 px)",
             "href": f"{base}{prefix}/{tms_id}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}{query}"},
        ]}


def tile_variant(layers: list[Layer | RasterLayer], size: int, labels: bool,
                 colormap: str | None, rescale: str | None) -> str:
    """The cache key's variant: empty for the default 256 px tile with the catalog's style
    (so the disk cache file is ``<y>.png``), else size, ``nolabels`` and the raster style.

    >>> from layers import CATALOG
    >>> tile_variant([CATALOG['parcels']], 256, True, None, None)
    ''
    >>> tile_variant([CATALOG['flood-depth']], 512, True, 'viridis', '0,2')
    '512.viridis.0.0_2.0'
    """
    parts = [] if size == 256 else [str(size)]
    if not labels and any(isinstance(la, Layer) for la in layers):
        parts.append("nolabels")
    for la in layers:
        if isinstance(la, RasterLayer):
            style = render.RasterStyle.parse(la, colormap, rescale)
            if (style.colormap, style.rescale) != (la.colormap, tuple(map(float, la.rescale))):
                parts.append(f"{style.colormap}.{style.rescale[0]!r}_{style.rescale[1]!r}")
            break
    return ".".join(parts)


def map_size(bbox: tuple[float, float, float, float], width: int | None,
             height: int | None) -> tuple[int, int]:
    """Width and height, the missing one(s) following the bbox's aspect ratio."""
    aspect = (bbox[2] - bbox[0]) / (bbox[3] - bbox[1])
    if width is None and height is None:
        width = DEFAULT_WIDTH
    if width is None:
        width = max(1, round(height * aspect))  # type: ignore[operator]
    if height is None:
        height = max(1, round(width / aspect))
    render.check_size(width, height)
    return width, height


def parse_bool(value: str | None, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    v = value.strip().lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise InvalidParameter(f"{name} must be true or false, got {value!r}")


@dataclass
class MapsRouter:
    """OGC API Maps: map tiles, map images, legends and raster values."""

    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Maps"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        r = self.router
        tile_responses = {200: {"content": {PNG: {}}}, 304: {"description": "Not modified"}}

        async def tile(request: Request, settings: Settings, pool, layers, tms_id: str,
                       z: int, y: int, x: str, tile_size: int | None, labels: bool,
                       colormap: str | None, rescale: str | None) -> Response:
            col, size = parse_tile_col(x, tile_size)
            view = tile_view(tms_id, z, y, col, size)
            variant = tile_variant(layers, size, labels, colormap, rescale)

            async def make() -> bytes:
                return await draw(request, settings, pool, view, layers, labels=labels,
                                  colormap=colormap, rescale=rescale)

            key = TileKey("png", tuple(la.id for la in layers), tms_id, z, col, y, variant)
            return await tile_response(request, key, make, PNG)

        @r.get("/collections/{collection_id}/map/tiles", summary="Map tilesets of a layer")
        async def collection_tilesets(request: Request, layer: AnyLayerDep,
                                      settings: SettingsDep) -> dict:
            """The PNG map tilesets of a layer (one per tile matrix set)."""
            base, prefix = base_url(request, settings), f"/collections/{layer.id}/map/tiles"
            return {"tilesets": [map_tileset(layer.title, base, prefix, t) for t in MAP_TMS],
                    "links": [{"rel": "self", "type": "application/json",
                               "href": base + prefix}]}

        @r.get("/collections/{collection_id}/map/tiles/{tms_id}",
               summary="Map tileset of a layer")
        async def collection_tileset(request: Request, layer: AnyLayerDep,
                                     settings: SettingsDep, tms_id: str) -> dict:
            """Metadata of a layer's PNG map tileset, with the tile URL template."""
            return map_tileset(layer.title, base_url(request, settings),
                               f"/collections/{layer.id}/map/tiles", tms_id)

        @r.get("/map/tiles", summary="Map tilesets of several layers")
        async def dataset_tilesets(request: Request, settings: SettingsDep,
                                   collections: CollectionsQ = None) -> dict:
            """PNG map tilesets of several layers (``collections``, default all vector)."""
            layers = parse_collections(collections)
            query = "?collections=" + ",".join(la.id for la in layers) if collections else ""
            base, title = base_url(request, settings), ", ".join(la.title for la in layers)
            return {"tilesets": [map_tileset(title, base, "/map/tiles", t, query)
                                 for t in MAP_TMS],
                    "links": [{"rel": "self", "type": "application/json",
                               "href": f"{base}/map/tiles{query}"}]}

        @r.get("/collections/{collection_id}/map/tiles/{tms_id}/{z}/{y}/{x}",
               summary="A map tile of one layer", response_class=Response,
               responses=tile_responses)
        async def collection_tile(
                request: Request, layer: AnyLayerDep, pool: PoolDep, settings: SettingsDep,
                tms_id: Annotated[str, PathParam(description="WebMercatorQuad or WorldCRS84Quad")],
                z: Annotated[int, PathParam(description="Zoom level")],
                y: Annotated[int, PathParam(description="Tile row")],
                x: Annotated[str, PathParam(description="Tile column, '@2x' for 512 px")],
                tile_size: Annotated[int | None, Query(alias="tileSize")] = None,
                labels: bool = True, colormap: ColormapQ = None,
                rescale: RescaleQ = None) -> Response:
            """PNG map tile of a layer rendered from the catalog's style (256 px, or 512 px
            with ``@2x`` or ``tileSize=512``); rasters coloured with ``colormap``/``rescale``."""
            return await tile(request, settings, pool, [layer], tms_id, z, y, x, tile_size,
                              labels, colormap, rescale)

        @r.get("/map/tiles/{tms_id}/{z}/{y}/{x}", summary="A map tile of several layers",
               response_class=Response, responses=tile_responses)
        async def dataset_tile(
                request: Request, pool: PoolDep, settings: SettingsDep,
                tms_id: Annotated[str, PathParam(description="WebMercatorQuad or WorldCRS84Quad")],
                z: Annotated[int, PathParam(description="Zoom level")],
                y: Annotated[int, PathParam(description="Tile row")],
                x: Annotated[str, PathParam(description="Tile column, '@2x' for 512 px")],
                collections: CollectionsQ = None,
                tile_size: Annotated[int | None, Query(alias="tileSize")] = None,
                labels: bool = True, colormap: ColormapQ = None,
                rescale: RescaleQ = None) -> Response:
            """PNG map tile of several layers (``collections``, first at the bottom; all
            vector layers by default)."""
            return await tile(request, settings, pool, parse_collections(collections), tms_id,
                              z, y, x, tile_size, labels, colormap, rescale)

        async def image(request: Request, settings: Settings, pool, layers, bbox: str | None,
                        bbox_crs: str | None, crs: str | None, width: int | None,
                        height: int | None, transparent: str | None, bgcolor: str | None,
                        f: str | None, labels: bool, colormap: str | None,
                        rescale: str | None) -> Response:
            out_crs = CRSRef.parse(crs or "EPSG:3857")
            in_crs = CRSRef.parse(bbox_crs or "CRS84")
            xy = parse_xy_bbox(bbox, in_crs) if bbox else HUE_BBOX
            if not bbox:
                in_crs = CRSRef(4326, False)
            box = transform_bbox(xy, in_crs.srid, out_crs.srid)
            w, h = map_size(box, width, height)
            fmt = (f or "png").lower()
            fmt = {"image/png": "png", "jpg": "jpeg", "image/jpeg": "jpeg"}.get(fmt, fmt)
            if fmt not in render.FORMATS:
                raise InvalidParameter(f"f must be png or jpeg, got {f!r}")
            output = render.Output(fmt, parse_bool(transparent, "transparent", fmt == "png"),
                                   render.parse_color(bgcolor))
            view = render.MapView(box, out_crs.srid, w, h)
            data = await draw(request, settings, pool, view, layers, output, labels, colormap,
                              rescale)
            return image_response(request, data, output.media_type)

        image_doc = {200: {"content": {PNG: {}, "image/jpeg": {}}}}

        @r.get("/collections/{collection_id}/map", summary="A map image of one layer",
               response_class=Response, responses=image_doc)
        async def collection_map(
                request: Request, layer: AnyLayerDep, pool: PoolDep, settings: SettingsDep,
                bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy in bbox-crs")
                                ] = None,
                bbox_crs: Annotated[str | None, Query(alias="bbox-crs")] = None,
                crs: Annotated[str | None, Query(description="Output CRS (EPSG:3857)")] = None,
                width: int | None = None, height: int | None = None,
                transparent: str | None = None, bgcolor: str | None = None,
                f: Annotated[str | None, Query(description="png or jpeg")] = None,
                labels: bool = True, colormap: ColormapQ = None,
                rescale: RescaleQ = None) -> Response:
            """One map image of a layer for print and reports (at most 4096 px a side)."""
            return await image(request, settings, pool, [layer], bbox, bbox_crs, crs, width,
                               height, transparent, bgcolor, f, labels, colormap, rescale)

        @r.get("/map/image", summary="A map image of several layers", response_class=Response,
               responses=image_doc)
        async def dataset_map(
                request: Request, pool: PoolDep, settings: SettingsDep,
                collections: CollectionsQ = None,
                bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy in bbox-crs")
                                ] = None,
                bbox_crs: Annotated[str | None, Query(alias="bbox-crs")] = None,
                crs: Annotated[str | None, Query(description="Output CRS (EPSG:3857)")] = None,
                width: int | None = None, height: int | None = None,
                transparent: str | None = None, bgcolor: str | None = None,
                f: Annotated[str | None, Query(description="png or jpeg")] = None,
                labels: bool = True, colormap: ColormapQ = None,
                rescale: RescaleQ = None) -> Response:
            """One map image of several layers (``collections``, first at the bottom)."""
            return await image(request, settings, pool, parse_collections(collections), bbox,
                               bbox_crs, crs, width, height, transparent, bgcolor, f, labels,
                               colormap, rescale)

        @r.get("/collections/{collection_id}/legend", summary="Legend of a layer",
               response_class=Response, responses={200: {"content": {PNG: {}}}})
        async def legend(request: Request, layer: AnyLayerDep,
                         lang: Annotated[str, Query(description="vi or en")] = "vi",
                         scale: Annotated[float, Query(description="1, or 2 for HiDPI")] = 1.0,
                         colormap: ColormapQ = None, rescale: RescaleQ = None) -> Response:
            """Legend image of a layer from the catalog (classes, symbols, colour ramp)."""
            style = (render.RasterStyle.parse(layer, colormap, rescale)
                     if isinstance(layer, RasterLayer) else None)
            data = await anyio.to_thread.run_sync(
                lambda: render.legend_png(layer, lang, scale, style))
            return image_response(request, data)

        @r.get("/collections/{collection_id}/value", summary="Raster value at a point")
        async def value(request: Request, layer: AnyLayerDep, pool: PoolDep,
                        settings: SettingsDep,
                        lon: Annotated[float, Query(description="Longitude (WGS 84)")],
                        lat: Annotated[float, Query(description="Latitude (WGS 84)")]) -> dict:
            """The value of a raster layer at a lon/lat point (``null`` where there is no
            data)."""
            if not isinstance(layer, RasterLayer):
                raise InvalidParameter(f"{layer.id!r} is a vector layer: values are read from "
                                       "raster layers (flood-depth, elevation)")
            path = await raster_file(await renderer(request, settings, pool), pool, settings,
                                     layer)
            v = await anyio.to_thread.run_sync(lambda: render.value_at(path, lon, lat))
            return {"collection": layer.id, "lon": lon, "lat": lat, "value": v,
                    "units": layer.units}
