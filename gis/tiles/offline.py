"""Tiles made ahead of requests: seeding the cache, PMTiles and MBTiles for static hosting.

Both enumerate the tiles of a lon/lat box over a zoom range and build them with the same
code as the API (:func:`gis.tiles.mvt.layer_tile`), several at once over a small pool.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import morecantile

from gis.errors import InvalidParameter
from gis.settings import Settings
from gis.tiles import generalize, metadata, mvt
from gis.tiles.cache import TileCache, TileKey
from layers import VECTOR_LAYERS, Layer

Box = tuple[float, float, float, float]
Progress = Callable[[int], None]  # called with the number of tiles just done
EXPORT_FORMATS = ("pmtiles", "mbtiles")


def parse_zooms(text: str) -> tuple[int, int]:
    """``"10-16"`` or ``"14"`` → (first, last) zoom.

    >>> parse_zooms("10-16"), parse_zooms("14")
    ((10, 16), (14, 14))
    >>> parse_zooms("16-10")
    Traceback (most recent call last):
    ...
    gis.errors.InvalidParameter: zoom range '16-10' must be N or N-M with 0 <= N <= M <= 24
    """
    lo, _, hi = text.partition("-")
    try:
        a, b = int(lo), int(hi or lo)
    except ValueError:
        a, b = -1, -1
    if not 0 <= a <= b <= mvt.MAX_ZOOM:
        raise InvalidParameter(f"zoom range {text!r} must be N or N-M with 0 <= N <= M <= "
                               f"{mvt.MAX_ZOOM}")
    return a, b


def parse_bbox(text: str) -> Box:
    """``"W,S,E,N"`` in lon/lat.

    >>> parse_bbox("107.5,16.4,107.6,16.5")
    (107.5, 16.4, 107.6, 16.5)
    """
    try:
        w, s, e, n = (float(v) for v in text.split(","))
    except ValueError:
        raise InvalidParameter(f"bbox {text!r} must be W,S,E,N in degrees") from None
    if not (-180 <= w < e <= 180 and -85.06 <= s < n <= 85.06):
        raise InvalidParameter(f"bbox {text!r} is not a lon/lat box with W < E and S < N")
    return w, s, e, n


def tiles_in(box: Box, zooms: tuple[int, int], tms_id: str = "WebMercatorQuad"
             ) -> Iterator[morecantile.Tile]:
    """Every tile of the box at each zoom, zoom by zoom.

    >>> len(list(tiles_in((107.57, 16.45, 107.60, 16.47), (12, 13))))
    8
    """
    tms = mvt.tile_matrix_set(tms_id)
    for z in range(zooms[0], zooms[1] + 1):
        yield from tms.tiles(*box, [z])


def count_tiles(box: Box, zooms: tuple[int, int], tms_id: str = "WebMercatorQuad") -> int:
    tms = mvt.tile_matrix_set(tms_id)
    total = 0
    for z in range(zooms[0], zooms[1] + 1):
        ul, lr = tms.tile(box[0], box[3], z), tms.tile(box[2], box[1], z)
        total += (abs(lr.x - ul.x) + 1) * (abs(lr.y - ul.y) + 1)
    return total


async def layer_extent(conn, layer: Layer) -> Box:
    """Lon/lat extent of a layer's rows (Huế's bounds when empty)."""
    from gis.sqlbuild import ident, table_ref

    row = await conn.fetchrow(
        f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT "
        f"ST_Extent({ident(layer.geometry_column)}) AS e FROM {table_ref(layer)}) s")
    if row is None or row[0] is None:
        return metadata.HUE_BOUNDS
    return tuple(row)  # type: ignore[return-value]


@dataclass
class Built:
    tile: morecantile.Tile
    data: bytes


async def _build_all(pool: asyncpg.Pool, layers: list[Layer], box: Box,
                     zooms: tuple[int, int], settings: Settings, tms_id: str,
                     progress: Progress | None, concurrency: int = 4):
    """Yield every tile of the box, built ``concurrency`` at a time (order not kept)."""
    queue: asyncio.Queue = asyncio.Queue(maxsize=concurrency * 4)
    done = object()

    async def worker(tiles: asyncio.Queue, out: asyncio.Queue) -> None:
        while True:
            t = await tiles.get()
            if t is done:
                await out.put(done)
                return
            shown = [la for la in layers if generalize.mode_at(la, t.z) != "none"]
            data = await mvt.tile(pool, shown, tms_id, t.z, t.x, t.y,
                                  max_bytes=settings.tile_max_bytes,
                                  max_features=settings.tile_max_features)
            await out.put(Built(t, data))

    tiles_q: asyncio.Queue = asyncio.Queue()
    for t in tiles_in(box, zooms, tms_id):
        tiles_q.put_nowait(t)
    for _ in range(concurrency):
        tiles_q.put_nowait(done)
    workers = [asyncio.create_task(worker(tiles_q, queue)) for _ in range(concurrency)]
    finished = 0
    try:
        while finished < concurrency:
            item = await queue.get()
            if item is done:
                finished += 1
                continue
            if progress is not None:
                progress(1)
            yield item
    finally:
        for w in workers:
            w.cancel()


async def seed(settings: Settings, layer: Layer, zooms: tuple[int, int], box: Box | None = None,
               tms_id: str = "WebMercatorQuad", progress: Progress | None = None) -> int:
    """Fill the configured cache (disk, Redis) with ``layer``'s tiles; returns how many
    were not empty. The cache first catches up with the change log, like a worker."""
    from gis.tiles.invalidation import TileService

    mvt.tile_matrix_set(tms_id)
    cache = TileCache.from_settings(settings)
    cache.memory.max_bytes = 0
    service = TileService(settings, cache)
    pool = await asyncpg.create_pool(settings.dsn, min_size=1, max_size=4)
    written = 0
    try:
        async with pool.acquire() as conn:
            await service.catch_up(conn)
            box = box or await layer_extent(conn, layer)
        cache.enabled = True
        async for built in _build_all(pool, [layer], box, zooms, settings, tms_id, progress):
            t = built.tile
            await cache.put(TileKey("mvt", (layer.id,), tms_id, t.z, t.x, t.y), built.data)
            written += bool(built.data)
    finally:
        await pool.close()
        await cache.close()
    return written


async def export(settings: Settings, out: Path, fmt: str, zooms: tuple[int, int],
                 box: Box | None = None, layers: list[Layer] | None = None,
                 progress: Progress | None = None) -> int:
    """Write the public layers' tiles (WebMercatorQuad, gzip-compressed MVT, every layer
    named by its collection id) to a PMTiles or MBTiles file; returns the tile count."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidParameter(f"unknown format {fmt!r}; use {' or '.join(EXPORT_FORMATS)}")
    layers = layers or list(VECTOR_LAYERS.values())
    pool = await asyncpg.create_pool(settings.dsn, min_size=1, max_size=4)
    tiles: dict[tuple[int, int, int], bytes] = {}
    try:
        async with pool.acquire() as conn:
            extents = [await layer_extent(conn, la) for la in layers]
        box = box or (min(e[0] for e in extents), min(e[1] for e in extents),
                      max(e[2] for e in extents), max(e[3] for e in extents))
        async for built in _build_all(pool, layers, box, zooms, settings, "WebMercatorQuad",
                                      progress):
            if built.data:
                t = built.tile
                tiles[(t.z, t.x, t.y)] = gzip.compress(built.data, mtime=0)
    finally:
        await pool.close()
    if not tiles:
        raise InvalidParameter("no tile has any feature in that box and zoom range")
    doc = metadata.tilejson(layers, "", list(extents), "huegis")
    doc["bounds"] = list(box)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "pmtiles":
        _write_pmtiles(out, tiles, doc, box, zooms)
    else:
        _write_mbtiles(out, tiles, doc, box, zooms)
    return len(tiles)


def _write_pmtiles(out: Path, tiles: dict, doc: dict, box: Box, zooms: tuple[int, int]) -> None:
    from pmtiles.tile import Compression, TileType, zxy_to_tileid
    from pmtiles.writer import Writer

    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    with out.open("wb") as f:
        writer = Writer(f)
        for tid, data in sorted((zxy_to_tileid(*k), v) for k, v in tiles.items()):
            writer.write_tile(tid, data)
        writer.finalize(
            {"tile_type": TileType.MVT, "tile_compression": Compression.GZIP,
             "min_lon_e7": int(box[0] * 1e7), "min_lat_e7": int(box[1] * 1e7),
             "max_lon_e7": int(box[2] * 1e7), "max_lat_e7": int(box[3] * 1e7),
             "center_zoom": max(zooms[0], min(zooms[1], 12)),
             "center_lon_e7": int(centre[0] * 1e7), "center_lat_e7": int(centre[1] * 1e7)},
            {"name": doc["name"], "description": doc["description"],
             "attribution": doc["attribution"], "vector_layers": doc["vector_layers"]})


def _write_mbtiles(out: Path, tiles: dict, doc: dict, box: Box, zooms: tuple[int, int]) -> None:
    """MBTiles 1.3: rows in TMS order (y flipped), vector_layers in the ``json`` metadata."""
    out.unlink(missing_ok=True)
    zs = [k[0] for k in tiles]
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    with sqlite3.connect(out) as db:
        db.executescript(
            "CREATE TABLE metadata (name text, value text);"
            "CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, "
            "tile_data blob);"
            "CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);")
        meta = {"name": doc["name"], "format": "pbf", "type": "overlay", "version": "1.0.0",
                "description": doc["description"], "attribution": doc["attribution"],
                "minzoom": str(min(zs)), "maxzoom": str(max(zs)),
                "bounds": ",".join(f"{v:.6f}" for v in box),
                "center": f"{centre[0]:.6f},{centre[1]:.6f},{max(min(zs), min(max(zs), 12))}",
                "json": json.dumps({"vector_layers": doc["vector_layers"]})}
        db.executemany("INSERT INTO metadata VALUES (?, ?)", meta.items())
        db.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)",
                       [(z, x, (1 << z) - 1 - y, data) for (z, x, y), data in tiles.items()])


def refresh(dsn: str) -> None:
    """Rebuild every generalized table and invalidate what they show (``huegis tiles
    refresh``): logged and announced by NOTIFY, like a write."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT huegis_tiles_rebuild()")
