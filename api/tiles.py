"""OGC API – Tiles: vector tiles (MVT) of one or several layers, tileset metadata, TileJSON.

The tile cache (``gis.tiles.TileCache`` on ``app.state.tile_service``) is shared with the
rendered tiles: :func:`tile_response` is the one way a route answers with a cached tile
(ETag, Cache-Control, 304, 204). The invalidation listener is started and stopped by
:func:`start_invalidation` / :func:`stop_invalidation` (this router's lifespan calls them).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated

import morecantile
from fastapi import APIRouter, FastAPI, Path, Query, Request, Response

from api.deps import LayerDep, PoolDep, SettingsDep, base_url
from gis import tiles
from gis.catalog import vector_layer
from gis.errors import InvalidParameter
from gis.settings import Settings
from gis.tiles import generalize, metadata
from gis.tiles.cache import TileKey
from gis.tiles.invalidation import TileService
from layers import VECTOR_LAYERS, Layer

MVT = metadata.MVT_MEDIA_TYPE
CollectionPath = Annotated[str, Path(description="Collection id from the catalog")]
TMSPath = Annotated[str, Path(description="Tile matrix set: WebMercatorQuad or WorldCRS84Quad")]
ZPath = Annotated[int, Path(description="Zoom level (tile matrix)")]
YPath = Annotated[int, Path(description="Tile row")]
XPath = Annotated[int, Path(description="Tile column")]
CollectionsQuery = Annotated[str | None, Query(
    description="Comma-separated collection ids (default: every vector layer)")]


# ------------------------------------------------------------------ cache service
async def start_invalidation(app: FastAPI) -> TileService:
    """Create the worker's tile cache and start its LISTEN connection (idempotent)."""
    service = getattr(app.state, "tile_service", None)
    if service is None:
        service = TileService(app.state.settings)
        app.state.tile_service = service
        await service.start()
    return service


async def stop_invalidation(app: FastAPI) -> None:
    service = getattr(app.state, "tile_service", None)
    if service is not None:
        app.state.tile_service = None
        await service.stop()


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    await start_invalidation(app)
    try:
        yield
    finally:
        await stop_invalidation(app)


def tile_service(request: Request) -> TileService:
    """The worker's tile service; without a running lifespan, one that never caches."""
    service = getattr(request.app.state, "tile_service", None)
    if service is None:
        service = TileService(request.app.state.settings)  # disabled until started
        request.app.state.tile_service = service
    return service


def cache_control(settings: Settings) -> str:
    if settings.tile_max_age <= 0:
        return "public, max-age=0, must-revalidate"
    return f"public, max-age={settings.tile_max_age}"


async def tile_response(request: Request, key: TileKey, make: Callable[[], Awaitable[bytes]],
                        media_type: str, since: int | None = None) -> Response:
    """Answer with the cached tile for ``key`` (made by ``make()`` on a miss): ETag and
    Cache-Control always, 304 when ``If-None-Match`` matches, 204 for an empty tile.
    ``since``: the service's generation when the caller started reading state."""
    settings: Settings = request.app.state.settings
    hit = await tile_service(request).get_or_make(key, make, since)
    headers = {"ETag": hit.etag, "Cache-Control": cache_control(settings)}
    inm = request.headers.get("if-none-match")
    if inm and (inm.strip() == "*" or hit.etag in [t.strip() for t in inm.split(",")]):
        return Response(status_code=304, headers=headers)
    if not hit.data:
        return Response(status_code=204, headers=headers)
    return Response(hit.data, media_type=media_type, headers=headers)


# ------------------------------------------------------------------ helpers
def parse_collections(value: str | None) -> list[Layer]:
    """Layers named in ``collections=a,b`` (every vector layer when absent), in order."""
    if value is None or not value.strip():
        return list(VECTOR_LAYERS.values())
    ids = [v.strip() for v in value.split(",") if v.strip()]
    if not ids:
        raise InvalidParameter("collections must name at least one collection")
    return [vector_layer(i) for i in dict.fromkeys(ids)]


def _query(layers: list[Layer], explicit: bool) -> str:
    return "?collections=" + ",".join(layer.id for layer in layers) if explicit else ""


async def _extents(pool, layers: list[Layer]) -> list[tuple[float, ...] | None]:
    """Layers' lon/lat extents from the planner statistics (exact for views)."""
    from gis.features.items import extent_sql

    out: list[tuple[float, ...] | None] = []
    for layer in layers:
        row = None
        with contextlib.suppress(Exception):
            row = await pool.fetchrow(extent_sql(layer, estimated=True))
        if row is None or None in tuple(row):
            with contextlib.suppress(Exception):
                row = await pool.fetchrow(extent_sql(layer))
        out.append(tuple(row) if row is not None and None not in tuple(row) else None)
    return out


async def _mvt(request: Request, layers: list[Layer], tms_id: str, z: int, x: int, y: int
               ) -> Response:
    """The (cached) tile. A hit costs no dependency resolution and no database; on a miss,
    a layer whose known extent misses the tile is empty without a query."""
    tms = tiles.tile_matrix_set(tms_id)
    tiles.check_tile(tms, z, x, y)
    service = tile_service(request)
    since = service.generation  # nothing read from here on is stored if a change comes
    settings: Settings = request.app.state.settings
    shown = [layer for layer in layers if generalize.mode_at(layer, z) != "none"]
    near = _padded(tms.bounds(morecantile.Tile(x, y, z)))

    def maker(layer: Layer) -> Callable[[], Awaitable[bytes]]:
        async def make() -> bytes:
            pool = await request.app.state.pools.get()
            if service.cache.enabled and not _touches(await service.extent(pool, layer),
                                                      near):
                return b""
            return await tiles.layer_tile(pool, layer, tms_id, z, x, y,
                                          max_bytes=settings.tile_max_bytes,
                                          max_features=settings.tile_max_features)
        return make

    key = TileKey("mvt", tuple(layer.id for layer in layers), tms_id, z, x, y)
    if len(layers) == 1:
        make = maker(layers[0]) if shown else _empty
        return await tile_response(request, key, make, MVT, since)

    async def make_all() -> bytes:
        parts = [await service.get_or_make(TileKey("mvt", (layer.id,), tms_id, z, x, y),
                                           maker(layer), since) for layer in shown]
        return b"".join(p.data for p in parts)

    return await tile_response(request, key, make_all, MVT, since)


def _padded(b) -> tuple[float, float, float, float]:
    """Lon/lat bounds of a tile widened by its buffer (features there still show)."""
    px, py = (b.right - b.left) * tiles.BUFFER / tiles.EXTENT, (b.top - b.bottom) * \
        tiles.BUFFER / tiles.EXTENT
    return b.left - px, b.bottom - py, b.right + px, b.top + py


def _touches(extent: tuple[float, ...] | None, box: tuple[float, ...]) -> bool:
    return extent is not None and not (extent[2] < box[0] or extent[0] > box[2]
                                       or extent[3] < box[1] or extent[1] > box[3])


async def _empty() -> bytes:
    return b""


# ------------------------------------------------------------------ routes
@dataclass
class TilesRouter:
    """OGC API – Tiles over the catalog: matrix sets, tilesets, tiles, TileJSON."""

    router: APIRouter = field(
        default_factory=lambda: APIRouter(tags=["Tiles"], lifespan=_lifespan))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:  # noqa: C901 - one small handler per route
        r = self.router

        @r.get("/tileMatrixSets", summary="Tile matrix sets")
        async def matrix_sets(request: Request, settings: SettingsDep) -> dict:
            """The tile matrix sets tiles are offered in."""
            return metadata.tile_matrix_sets(base_url(request, settings))

        @r.get("/tileMatrixSets/{tms_id}", summary="A tile matrix set")
        async def matrix_set(tms_id: TMSPath) -> dict:
            """Definition of one tile matrix set (OGC Two Dimensional Tile Matrix Set)."""
            tiles.tile_matrix_set(tms_id)
            return metadata.tile_matrix_set_doc(tms_id)

        @r.get("/collections/{collection_id}/tiles", summary="Tilesets of a collection")
        async def layer_tilesets(request: Request, layer: LayerDep,
                                 settings: SettingsDep) -> dict:
            """The vector tilesets of one collection."""
            return metadata.tilesets_list([layer], base_url(request, settings),
                                          f"/collections/{layer.id}/tiles")

        @r.get("/collections/{collection_id}/tiles/{tms_id}", summary="Tileset metadata")
        async def layer_tileset(request: Request, layer: LayerDep, pool: PoolDep,
                                settings: SettingsDep, tms_id: TMSPath) -> dict:
            """Metadata of one collection's vector tileset."""
            tiles.tile_matrix_set(tms_id)
            return metadata.tileset([layer], tms_id, base_url(request, settings),
                                    f"/collections/{layer.id}/tiles/{tms_id}",
                                    await _extents(pool, [layer]))

        @r.get("/collections/{collection_id}/tiles/{tms_id}/tilejson.json",
               summary="TileJSON of a collection")
        async def layer_tilejson(request: Request, layer: LayerDep, pool: PoolDep,
                                 settings: SettingsDep, tms_id: TMSPath) -> dict:
            """TileJSON 3.0.0 for MapLibre and other clients."""
            tiles.tile_matrix_set(tms_id)
            url = (f"{base_url(request, settings)}/collections/{layer.id}/tiles/{tms_id}"
                   "/{z}/{y}/{x}")
            return metadata.tilejson([layer], url, await _extents(pool, [layer]), layer.id)

        @r.get("/collections/{collection_id}/tiles/{tms_id}/{z}/{y}/{x}",
               summary="A vector tile of one layer", response_class=Response,
               responses={200: {"content": {MVT: {}}}, 204: {"description": "Empty tile"},
                          304: {"description": "Not modified"}})
        async def layer_tile(request: Request, collection_id: CollectionPath,
                             tms_id: TMSPath, z: ZPath, y: YPath, x: XPath) -> Response:
            """Mapbox Vector Tile of a layer, public fields only; 204 when empty."""
            return await _mvt(request, [vector_layer(collection_id)], tms_id, z, x, y)

        @r.get("/tiles", summary="Tilesets of the whole map")
        async def map_tilesets(request: Request, settings: SettingsDep,
                               collections: CollectionsQuery = None) -> dict:
            """The vector tilesets holding several layers."""
            layers = parse_collections(collections)
            return metadata.tilesets_list(layers, base_url(request, settings), "/tiles",
                                          _query(layers, collections is not None))

        @r.get("/tiles/{tms_id}", summary="Tileset metadata of the whole map")
        async def map_tileset(request: Request, pool: PoolDep, settings: SettingsDep,
                              tms_id: TMSPath, collections: CollectionsQuery = None) -> dict:
            """Metadata of the multi-layer vector tileset."""
            tiles.tile_matrix_set(tms_id)
            layers = parse_collections(collections)
            return metadata.tileset(layers, tms_id, base_url(request, settings),
                                    f"/tiles/{tms_id}", await _extents(pool, layers),
                                    _query(layers, collections is not None))

        @r.get("/tiles/{tms_id}/tilejson.json", summary="TileJSON of several layers")
        async def map_tilejson(request: Request, pool: PoolDep, settings: SettingsDep,
                               tms_id: TMSPath, collections: CollectionsQuery = None) -> dict:
            """TileJSON 3.0.0 of several layers in one tile."""
            tiles.tile_matrix_set(tms_id)
            layers = parse_collections(collections)
            url = (f"{base_url(request, settings)}/tiles/{tms_id}/{{z}}/{{y}}/{{x}}"
                   + _query(layers, collections is not None))
            return metadata.tilejson(layers, url, await _extents(pool, layers), "huegis")

        @r.get("/tiles/{tms_id}/{z}/{y}/{x}", summary="A vector tile of several layers",
               response_class=Response,
               responses={200: {"content": {MVT: {}}}, 204: {"description": "Empty tile"},
                          304: {"description": "Not modified"}})
        async def map_tile(request: Request, tms_id: TMSPath, z: ZPath, y: YPath, x: XPath,
                           collections: CollectionsQuery = None) -> Response:
            """One Mapbox Vector Tile holding several layers, each named by its collection
            id; 204 when empty."""
            return await _mvt(request, parse_collections(collections), tms_id, z, x, y)
