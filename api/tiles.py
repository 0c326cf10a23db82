"""OGC API – Tiles: vector tiles (MVT) of one or several layers, tileset metadata, TileJSON.

The tile cache (``gis.tiles.TileCache`` on ``app.state.tile_service``) is shared with the
rendered tiles: :func:`tile_response` is the one way a route answers with a cached tile
(ETag, Cache-Control, 304, 204). The invalidation listener is started and stopped by
:func:`start_invalidation` / :func:`stop_invalidation` (this router's lifespan calls them).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated

import morecantile
from fastapi import APIRouter, FastAPI, Path, Query, Request, Response

from api.deps import LayerDep, PoolDep, SettingsDep, base_url
from gis import tiles
from gis.catalog import vector_layer
from gis.errors import HueGISError, InvalidParameter
from gis.settings import Settings
from gis.tiles import generalize, metadata
from gis.tiles.cache import CachedTile, TileKey
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
    warm = asyncio.ensure_future(_warm_connections(app))
    try:
        yield
    finally:
        # Let the warm-up finish rather than cancel it: a task cancelled inside
        # ``pool.acquire()`` can leave a connection marked in use, and pool.close() would
        # then wait for it forever. It is a few tiny queries (or one error) long.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(warm), WARM_SHUTDOWN_S)
        warm.cancel()
        await stop_invalidation(app)


WARM_CONNECTIONS = 4
WARM_SHUTDOWN_S = 5.0
_WARM_SQL = ("SELECT ST_AsMVT(m.*, 'warm', 4096, 'g') FROM (SELECT ST_AsMVTGeom("
             "ST_MakeEnvelope(0, 0, 1, 1, 3857), ST_MakeEnvelope(0, 0, 2, 2, 3857)::box2d) AS g, "
             "1 AS a) AS m WHERE huegis_tiles_serial()")


async def _warm_connections(app: FastAPI) -> None:
    """Open a few pool connections in the background at start-up and run a tiny tile query
    on each: a new connection's first tile costs ~50 ms (PostGIS loaded, its functions
    looked up), paid here rather than by the first map views. Then load the layers'
    extents (a full scan each: ~0.4 s at a million parcels), which would otherwise start
    with the first tile requests and compete with them."""
    try:
        pool = await app.state.pools.get()
    except Exception:  # noqa: BLE001 - the database may be down: nothing to warm
        return
    conns = []
    try:
        for _ in range(min(WARM_CONNECTIONS, app.state.settings.pool_max_size)):
            conns.append(await pool.acquire())
        for conn in conns:
            await conn.fetchval(_WARM_SQL)
    except Exception:  # noqa: BLE001 - e.g. not migrated yet; requests will tell
        pass
    finally:  # even when cancelled: a connection never given back blocks pool.close()
        for conn in conns:
            with contextlib.suppress(Exception):
                await pool.release(conn)
    service = getattr(app.state, "tile_service", None)
    if service is not None:
        with contextlib.suppress(Exception):
            await service.load_extents(pool, list(VECTOR_LAYERS.values()))


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
    hit = await tile_service(request).get_or_make(key, make, since)
    status, headers, body = answer(hit, request.headers.get("if-none-match"),
                                   request.app.state.settings)
    return Response(body, status_code=status, headers=headers,
                    media_type=media_type if status == 200 else None)


def answer(hit: CachedTile, if_none_match: str | None, settings: Settings
           ) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (ETag, Cache-Control) and body of a tile answer: 304 when
    ``If-None-Match`` names its ETag, 204 when it is empty, else 200."""
    headers = {"ETag": hit.etag, "Cache-Control": cache_control(settings)}
    inm = if_none_match
    if inm and (inm.strip() == "*" or hit.etag in [t.strip() for t in inm.split(",")]):
        return 304, headers, b""
    if not hit.data:
        return 204, headers, b""
    return 200, headers, hit.data


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
    """The (cached) tile as a response (see :func:`mvt_tile`)."""
    tiles.check_tile(tiles.tile_matrix_set(tms_id), z, x, y)
    if getattr(request.app.state, "tile_service", None) is None:
        tile_service(request)  # a disabled one, when the lifespan did not run
    hit = await mvt_tile(request.app.state, layers, tms_id, z, x, y)
    status, headers, body = answer(hit, request.headers.get("if-none-match"),
                                   request.app.state.settings)
    return Response(body, status_code=status, headers=headers,
                    media_type=MVT if status == 200 else None)


async def mvt_tile(state, layers: list[Layer], tms_id: str, z: int, x: int, y: int
                   ) -> CachedTile:
    """The (cached) MVT of ``layers`` at z/x/y (already checked) for the app ``state``. A
    hit costs no database; on a miss, a layer whose known extent misses the tile is empty
    without a query."""
    service: TileService = state.tile_service
    since = service.generation  # nothing read from here on is stored if a change comes
    settings: Settings = state.settings
    shown = [layer for layer in layers if generalize.mode_at(layer, z) != "none"]

    def maker(layer: Layer) -> Callable[[], Awaitable[bytes]]:
        async def make() -> bytes:
            pool = await state.pools.get()
            known, extent = service.known_extent(pool, layer)
            if known and service.cache.enabled and not _touches(extent, _near(tms_id, z, x, y)):
                return b""
            async with service.build_slots:
                return await tiles.layer_tile(pool, layer, tms_id, z, x, y,
                                              max_bytes=settings.tile_max_bytes,
                                              max_features=settings.tile_max_features)
        return make

    key = TileKey("mvt", tuple(layer.id for layer in layers), tms_id, z, x, y)
    if len(layers) == 1:
        return await service.get_or_make(key, maker(layers[0]) if shown else _empty, since)

    async def make_all() -> bytes:
        parts = [await service.get_or_make(TileKey("mvt", (layer.id,), tms_id, z, x, y),
                                           maker(layer), since) for layer in shown]
        return b"".join(p.data for p in parts)

    return await service.get_or_make(key, make_all, since)


def _near(tms_id: str, z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Lon/lat bounds of a tile widened by its buffer (features there still show)."""
    if tms_id == "WebMercatorQuad":  # morecantile's bounds, without pyproj
        n = 1 << z
        pad = tiles.BUFFER / tiles.EXTENT
        w, e = (x - pad) / n * 360.0 - 180.0, (x + 1 + pad) / n * 360.0 - 180.0
        north = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y - pad) / n))))
        south = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 1 + pad) / n))))
        return w, south, e, north
    return _padded(tiles.tile_matrix_set(tms_id).bounds(morecantile.Tile(x, y, z)))


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


# ------------------------------------------------------------------ fast path
_LAYER_TILE = re.compile(r"/collections/([^/]+)/tiles/([^/]+)/(\d{1,2})/(\d{1,9})/(\d{1,9})")
_MAP_TILE = re.compile(r"/tiles/([^/]+)/(\d{1,2})/(\d{1,9})/(\d{1,9})")


class TileFastPath:
    """Pure ASGI in front of the FastAPI app: a ``GET`` of a vector tile is answered
    without FastAPI's routing, validation and response objects (a cache hit is a dict
    lookup and one ``send``), with the same bytes, ETag, Cache-Control, 304 and 204 as the
    routes above. Anything it does not fully understand — another path, an unknown layer
    or matrix set, a z/x/y outside the matrix, a bad ``collections=``, a failure while
    making the tile — goes to the app unchanged, which answers as it always does (errors
    included). Mounted by ``create_app``: ``app.add_middleware(TileFastPath,
    state=app.state)``."""

    def __init__(self, app, state) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            found = self._match(scope)
            if found is not None and await self._serve(scope, send, *found):
                return
        await self.app(scope, receive, send)

    def _match(self, scope) -> tuple[list[Layer], str, int, int, int] | None:
        path = scope["path"]
        m = _LAYER_TILE.fullmatch(path)
        if m is not None:
            layer = VECTOR_LAYERS.get(m[1])
            if layer is None:
                return None
            layers, (tms_id, z, y, x) = [layer], m.groups()[1:]
        else:
            m = _MAP_TILE.fullmatch(path)
            if m is None:
                return None
            query = scope.get("query_string", b"")
            if query:
                if not query.startswith(b"collections=") or b"&" in query:
                    return None
                ids = urllib.parse.unquote(query[12:].decode("latin-1"))
                try:
                    layers = parse_collections(ids)
                except HueGISError:
                    return None
            else:
                layers = list(VECTOR_LAYERS.values())
            tms_id, z, y, x = m.groups()
        if tms_id not in tiles.SUPPORTED_TMS:
            return None
        z, x, y = int(z), int(x), int(y)
        try:
            tiles.check_tile(tiles.tile_matrix_set(tms_id), z, x, y)
        except HueGISError:
            return None
        return layers, tms_id, z, x, y

    async def _serve(self, scope, send, layers, tms_id, z, x, y) -> bool:
        if getattr(self.state, "tile_service", None) is None:
            return False
        try:
            hit = await mvt_tile(self.state, layers, tms_id, z, x, y)
        except Exception:  # noqa: BLE001 - the app answers again, with its error shape
            return False
        inm = None
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                inm = value.decode("latin-1")
        status, headers, body = answer(hit, inm, self.state.settings)
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        if status == 200:
            raw += [(b"content-type", MVT.encode()), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})
        return True
