"""The tile cache: levels, disk layout, exact invalidation by layer and box, Redis."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import morecantile
import pytest
import redis

from gis.settings import Settings
from gis.tiles.cache import DiskCache, MemoryCache, RedisCache, TileCache, TileKey, etag_of
from gis.tiles.invalidation import TileService

WMQ = morecantile.tms.get("WebMercatorQuad")
POINT = (107.5861, 16.4639)  # central Huế, lon/lat
FAR = (107.40, 16.30)  # 25 km away


def _keys(lon: float, lat: float, kinds=("mvt", "png"), colls=(("parcels",),
                                                                  ("wards", "parcels"),
                                                                  ("wards",))):
    out = []
    for z in (10, 14, 17):
        t = WMQ.tile(lon, lat, z)
        for kind in kinds:
            for c in colls:
                out.append(TileKey(kind, c, "WebMercatorQuad", z, t.x, t.y))
    return out


def _box(lon: float, lat: float, d: float = 1e-5) -> tuple[float, float, float, float]:
    return (lon - d, lat - d, lon + d, lat + d)


async def _fill(cache: TileCache, keys: list[TileKey]) -> None:
    for k in keys:
        await cache.put(k, f"tile {k.path}".encode())


def _run(coro):
    """Run a coroutine in its own thread and loop (works even if a loop runs here)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_disk_layout_is_what_nginx_serves(tmp_path: Path) -> None:
    cache = TileCache(MemoryCache(1 << 20), DiskCache(tmp_path))
    key = TileKey("mvt", ("parcels",), "WebMercatorQuad", 14, 13088, 7432)
    tile = _run(cache.put(key, b"abc"))
    assert (tmp_path / "mvt/parcels/WebMercatorQuad/14/13088/7432.mvt").read_bytes() == b"abc"
    assert tile.etag == etag_of(b"abc") and tile.etag.startswith('"')
    # An empty tile is kept in memory but never written to disk (nginx must ask the app).
    empty = TileKey("mvt", ("parcels",), "WebMercatorQuad", 14, 1, 1)
    _run(cache.put(empty, b""))
    assert not (tmp_path / empty.path).exists()
    assert _run(cache.get(empty)).data == b""
    # A disk hit fills memory; a fresh cache reads the disk.
    assert _run(TileCache(MemoryCache(1 << 20), DiskCache(tmp_path)).get(key)).data == b"abc"


def test_invalidation_drops_exactly_the_touched_tiles_of_the_layer(tmp_path: Path) -> None:
    cache = TileCache(MemoryCache(1 << 20), DiskCache(tmp_path))
    near, far = _keys(*POINT), _keys(*FAR)
    _run(_fill(cache, near + far))
    dropped = _run(cache.invalidate("parcels", [_box(*POINT)]))
    # Memory and disk each drop the parcels tiles (single and composite) over the point at
    # every zoom and of every kind; wards-only tiles and far tiles stay.
    touched = [k for k in near if "parcels" in k.collections]
    assert dropped == 2 * len(touched)
    for k in near + far:
        gone = k in touched
        assert (k in cache.memory._items) is not gone
        assert (tmp_path / k.path).exists() is not gone
    # At zoom 10 both points share a tile: the far parcels tile went too only if so.
    assert _run(cache.invalidate("wards", [_box(*FAR)])) > 0


def test_invalidation_reaches_tiles_whose_buffer_holds_the_change(tmp_path: Path) -> None:
    cache = TileCache(MemoryCache(1 << 20), None)
    t = WMQ.tile(*POINT, 16)
    left = WMQ.bounds(t).left
    lat = (WMQ.bounds(t).top + WMQ.bounds(t).bottom) / 2
    west = TileKey("mvt", ("parcels",), "WebMercatorQuad", 16, t.x - 1, t.y)
    _run(cache.put(west, b"x"))
    # A change just inside the tile, 1 m from its western edge: the western neighbour
    # draws it in its buffer, so it must go.
    _run(cache.invalidate("parcels", [_box(left + 1e-5, lat, 1e-6)]))
    assert west not in cache.memory._items


def test_a_change_while_a_big_tile_is_stored_leaves_no_stale_copy(tmp_path: Path) -> None:
    """A big tile is written to disk in a thread; a change message whose invalidation runs
    before the file lands must not leave that file (or the memory copy) to be served."""
    started, release = threading.Event(), threading.Event()

    class SlowDisk(DiskCache):  # the real disk level, its write held until released
        def put(self, key: TileKey, tile) -> None:
            started.set()
            release.wait(10)
            super().put(key, tile)

    key = TileKey("mvt", ("parcels",), "WebMercatorQuad", 16, *WMQ.tile(*POINT, 16)[:2])

    async def big() -> bytes:
        return b"t" * 100_000  # over the size written from the event loop itself

    async def scenario() -> tuple[bool, bool]:
        svc = TileService(Settings(var_dir=tmp_path),
                          TileCache(MemoryCache(1 << 24), SlowDisk(tmp_path)))
        svc.cache.enabled = True  # as once LISTENing
        storing = asyncio.ensure_future(svc.get_or_make(key, big))
        await asyncio.to_thread(started.wait, 10)
        svc.apply("parcels", [_box(*POINT)])  # the change arrives mid-write
        while svc.pending:  # its disk invalidation runs (and finds no file yet)
            await asyncio.sleep(0.01)
        release.set()
        await storing
        return (tmp_path / key.path).exists(), key in svc.cache.memory._items

    on_disk, in_memory = _run(scenario())
    assert not on_disk and not in_memory


def test_memory_cache_is_bounded() -> None:
    m = MemoryCache(10_000)
    cache = TileCache(m)
    for i in range(100):
        _run(cache.put(TileKey("mvt", ("parcels",), "WebMercatorQuad", 15, i, 0), b"x" * 500))
    assert m.size <= 10_000 and len(m) < 100
    assert _run(cache.get(TileKey("mvt", ("parcels",), "WebMercatorQuad", 15, 99, 0)))
    assert _run(cache.get(TileKey("mvt", ("parcels",), "WebMercatorQuad", 15, 0, 0))) is None


def test_disabled_cache_neither_reads_nor_writes(tmp_path: Path) -> None:
    cache = TileCache(MemoryCache(1 << 20), DiskCache(tmp_path))
    key = TileKey("png", ("wards",), "WebMercatorQuad", 12, 1, 1, "512")
    _run(cache.put(key, b"png"))
    cache.enabled = False
    assert _run(cache.get(key)) is None
    _run(cache.put(TileKey("png", ("wards",), "WebMercatorQuad", 12, 2, 2), b"png"))
    assert not (tmp_path / "png/wards/WebMercatorQuad/12/2/2.png").exists()


def test_redis_level_is_shared_and_invalidated(redis_url: str, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()

    async def scenario() -> tuple[bytes | None, int, bytes | None, bytes | None]:
        a = TileCache(MemoryCache(1 << 20), None, RedisCache(redis_url))
        b = TileCache(MemoryCache(1 << 20), None, RedisCache(redis_url))
        near = TileKey("mvt", ("wards", "parcels"), "WebMercatorQuad", 15,
                       *WMQ.tile(*POINT, 15)[:2])
        far = TileKey("mvt", ("parcels",), "WebMercatorQuad", 15, *WMQ.tile(*FAR, 15)[:2])
        await a.put(near, b"near")
        await a.put(far, b"far")
        seen_by_b = await b.get(near)  # another worker reads what the first one made
        n = await b.invalidate("parcels", [_box(*POINT)])
        a.memory.clear()
        after_near, after_far = await a.get(near), await a.get(far)
        await a.close()
        await b.close()
        return (seen_by_b.data if seen_by_b else None, n,
                after_near.data if after_near else None, after_far.data if after_far else None)

    seen, n, near_after, far_after = _run(scenario())
    assert seen == b"near"
    assert n == 2  # b's memory copy and the Redis entry
    assert near_after is None and far_after == b"far"
    assert client.sismember("huegis:tileidx:parcels", "mvt/parcels/WebMercatorQuad/15/"
                            f"{WMQ.tile(*FAR, 15).x}/{WMQ.tile(*FAR, 15).y}.mvt")


@pytest.mark.parametrize("path", ["x/y", "mvt/a/WebMercatorQuad/z/1/2.mvt", ""])
def test_key_from_path_refuses_what_is_not_a_tile(path: str) -> None:
    from gis.tiles.cache import key_from_path

    assert key_from_path(path) is None
