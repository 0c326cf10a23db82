"""The tile cache shared by every kind of tile (MVT, PNG, raster) and its invalidation.

One interface, three backends stacked from fastest to most shared:

- an in-process LRU (bounded in bytes), always on;
- a disk tree ``<cache_dir>/<kind>/<collections>/<tms>/<z>/<x>/<y>[.<variant>].<ext>`` that a
  web server (nginx, see ``deploy/nginx.conf``) serves directly, on by default;
- Redis, shared by every worker, when ``HUEGIS_REDIS_URL`` is set.

Usage (every method is a coroutine, so a handler never blocks on Redis)::

    cache = TileCache.from_settings(settings)
    key = TileKey("png", ("parcels",), "WebMercatorQuad", z, x, y, variant="512")
    hit = await cache.get(key)            # CachedTile(data, etag) or None
    if hit is None:
        hit = await cache.put(key, render())  # computes the ETag (or pass ``etag=``)
    await cache.invalidate("parcels", [(lon_min, lat_min, lon_max, lat_max)])

``invalidate`` drops, for every kind (mvt, png…), every collection set containing the layer
(single and composite tiles) and every zoom, exactly the tiles that the given lon/lat boxes
touch (each box widened by the tile buffer at that zoom). An empty tile (``b""``) is cached
in memory and Redis but never written to disk, so nginx passes it to the application (204).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import math
import os
import shutil
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import morecantile

if TYPE_CHECKING:
    from gis.settings import Settings

Box = tuple[float, float, float, float]  # lon/lat west, south, east, north

_TMS_IDS = frozenset(morecantile.tms.list())
# File extension of each kind of tile (the kind is the first level of the disk tree).
EXTENSIONS = {"mvt": "mvt", "png": "png", "jpg": "jpg", "webp": "webp", "raster": "png"}
# How far (as a fraction of a tile) features beyond a tile's edge still show in it.
TILE_BUFFER_FRACTION = 64 / 4096


@dataclass(frozen=True)
class TileKey:
    """What identifies one cached tile.

    >>> TileKey("mvt", ("parcels",), "WebMercatorQuad", 14, 13104, 7622).path
    'mvt/parcels/WebMercatorQuad/14/13104/7622.mvt'
    >>> TileKey("png", ("wards", "parcels"), "WebMercatorQuad", 3, 1, 2, "512").path
    'png/wards,parcels/WebMercatorQuad/3/1/2.512.png'
    """

    kind: str
    collections: tuple[str, ...]
    tms: str
    z: int
    x: int
    y: int
    variant: str = ""

    @property
    def ext(self) -> str:
        return EXTENSIONS.get(self.kind, self.kind)

    @property
    def path(self) -> str:
        """Relative path in the disk tree (also the Redis key suffix)."""
        suffix = f".{self.variant}" if self.variant else ""
        return (f"{self.kind}/{','.join(self.collections)}/{self.tms}/{self.z}/{self.x}/"
                f"{self.y}{suffix}.{self.ext}")


@dataclass(frozen=True)
class CachedTile:
    """Bytes of a tile (``b""`` for an empty tile) and their ETag (quoted)."""

    data: bytes
    etag: str


def etag_of(data: bytes) -> str:
    """A strong ETag for the bytes.

    >>> etag_of(b"")
    '"e"'
    >>> len(etag_of(b"abc"))
    26
    """
    if not data:
        return '"e"'
    return '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'


@functools.lru_cache(maxsize=16)
def _tms(tms_id: str) -> morecantile.TileMatrixSet:
    """The matrix set, parsed once (``morecantile.tms.get`` parses its JSON on every call)."""
    return morecantile.tms.get(tms_id)


def tiles_touched(tms_id: str, box: Box, z: int) -> tuple[int, int, int, int]:
    """Column and row ranges ``(xmin, ymin, xmax, ymax)`` (inclusive) of the tiles of zoom
    ``z`` that a lon/lat box touches, including the tiles whose buffer reaches it.

    >>> tiles_touched("WebMercatorQuad", (107.58, 16.46, 107.58, 16.46), 14)
    (13088, 7432, 13088, 7432)
    """
    tms = _tms(tms_id)
    w, s, e, n = box
    # Widen by the tile buffer: one tile at zoom z spans 360/2^z degrees of longitude in
    # both quads (WorldCRS84Quad has 2 columns at zoom 0, hence the factor).
    cols = tms.matrix(z).matrixWidth
    pad = 360.0 / cols * TILE_BUFFER_FRACTION
    lat_pad = pad * (1 if tms_id != "WebMercatorQuad" else math.cos(math.radians((s + n) / 2)))
    w, e = max(w - pad, -180.0), min(e + pad, 180.0)
    s, n = max(s - lat_pad, -85.0), min(n + lat_pad, 85.0)
    ul = tms.tile(w, n, z)
    lr = tms.tile(e, s, z)
    return min(ul.x, lr.x), min(ul.y, lr.y), max(ul.x, lr.x), max(ul.y, lr.y)


def _touches(key: TileKey, boxes: Sequence[Box], ranges: dict) -> bool:
    for i, box in enumerate(boxes):
        r = ranges.get((key.tms, key.z, i))
        if r is None:
            r = ranges[(key.tms, key.z, i)] = tiles_touched(key.tms, box, key.z)
        if r[0] <= key.x <= r[2] and r[1] <= key.y <= r[3]:
            return True
    return False


class MemoryCache:
    """In-process LRU bounded by the total size of the tiles it holds."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[TileKey, CachedTile] = OrderedDict()

    def get(self, key: TileKey) -> CachedTile | None:
        tile = self._items.get(key)
        if tile is not None:
            self._items.move_to_end(key)
        return tile

    def put(self, key: TileKey, tile: CachedTile) -> None:
        if len(tile.data) > self.max_bytes:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= len(old.data) + 100
        self._items[key] = tile
        self.size += len(tile.data) + 100
        while self.size > self.max_bytes and self._items:
            _, dropped = self._items.popitem(last=False)
            self.size -= len(dropped.data) + 100

    def drop(self, key: TileKey) -> None:
        tile = self._items.pop(key, None)
        if tile is not None:
            self.size -= len(tile.data) + 100

    def invalidate(self, layer_id: str, boxes: Sequence[Box]) -> int:
        ranges: dict = {}
        doomed = [k for k in self._items
                  if layer_id in k.collections and _touches(k, boxes, ranges)]
        for k in doomed:
            self.drop(k)
        return len(doomed)

    def clear(self) -> None:
        self._items.clear()
        self.size = 0

    def __len__(self) -> int:
        return len(self._items)


class DiskCache:
    """Tiles as files under ``root`` (written atomically; empty tiles are not written)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._dirs: set[str] = set()  # directories known to exist (no mkdir per tile)

    def get(self, key: TileKey) -> CachedTile | None:
        try:
            data = (self.root / key.path).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return CachedTile(data, etag_of(data))

    def put(self, key: TileKey, tile: CachedTile) -> None:
        if not tile.data:
            return
        # Plain os calls: a cold tile's write is on the request's path (small tiles).
        path = os.path.join(self.root, key.path)
        folder, name = os.path.split(path)
        if folder not in self._dirs:
            os.makedirs(folder, exist_ok=True)
            self._dirs.add(folder)
        tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except FileNotFoundError:  # the folder went (cleared or invalidated): make it again
            os.makedirs(folder, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(tile.data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)

    def invalidate(self, layer_id: str, boxes: Sequence[Box]) -> int:
        """Walk only the directories that exist: cost follows what is cached."""
        dropped = 0
        if not self.root.is_dir():
            return 0
        for kind_dir in _subdirs(self.root):
            for coll_dir in _subdirs(kind_dir):
                if layer_id not in coll_dir.name.split(","):
                    continue
                for tms_dir in _subdirs(coll_dir):
                    if tms_dir.name not in _TMS_IDS:
                        continue
                    for z_dir in _subdirs(tms_dir):
                        if not z_dir.name.isdigit():
                            continue
                        z = int(z_dir.name)
                        rs = [tiles_touched(tms_dir.name, b, z) for b in boxes]
                        for x_dir in _subdirs(z_dir):
                            if not x_dir.name.isdigit():
                                continue
                            x = int(x_dir.name)
                            rows = [r for r in rs if r[0] <= x <= r[2]]
                            if not rows:
                                continue
                            for f in os.scandir(x_dir):
                                y = f.name.split(".", 1)[0]
                                if y.isdigit() and any(r[1] <= int(y) <= r[3] for r in rows):
                                    with contextlib.suppress(FileNotFoundError):
                                        os.unlink(f.path)
                                        dropped += 1
        return dropped

    def clear(self) -> None:
        """Remove every cached file (the root directory stays)."""
        self._dirs.clear()
        if self.root.is_dir():
            for child in self.root.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)


def _subdirs(path: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(path) if e.is_dir()]
    except FileNotFoundError:
        return []


class RedisCache:
    """Tiles in Redis, shared by all workers; one index set per layer finds them again."""

    PREFIX = "huegis:tile:"

    def __init__(self, url: str, ttl_s: int = 7 * 86400) -> None:
        import redis.asyncio as aioredis

        self.url = url
        self.ttl_s = ttl_s
        self.client = aioredis.Redis.from_url(url)

    @staticmethod
    def _index(layer_id: str) -> str:
        return f"huegis:tileidx:{layer_id}"

    async def get(self, key: TileKey) -> CachedTile | None:
        raw = await self.client.get(self.PREFIX + key.path)
        if raw is None:
            return None
        etag, _, data = raw.partition(b"\n")
        return CachedTile(data, etag.decode())

    async def put(self, key: TileKey, tile: CachedTile) -> None:
        name = self.PREFIX + key.path
        async with self.client.pipeline(transaction=False) as p:
            p.set(name, tile.etag.encode() + b"\n" + tile.data, ex=self.ttl_s)
            for layer_id in key.collections:
                p.sadd(self._index(layer_id), key.path)
            await p.execute()

    async def invalidate(self, layer_id: str, boxes: Sequence[Box]) -> int:
        paths = [m.decode() for m in await self.client.smembers(self._index(layer_id))]
        ranges: dict = {}
        doomed = []
        for path in paths:
            key = key_from_path(path)
            if key is None or _touches(key, boxes, ranges):
                doomed.append(path)
        if doomed:
            async with self.client.pipeline(transaction=False) as p:
                p.delete(*[self.PREFIX + d for d in doomed])
                p.srem(self._index(layer_id), *doomed)
                await p.execute()
        return len(doomed)

    async def clear(self) -> None:
        async for name in self.client.scan_iter(match="huegis:tile*", count=1000):
            await self.client.delete(name)

    async def close(self) -> None:
        await self.client.aclose()


def key_from_path(path: str) -> TileKey | None:
    """Inverse of :attr:`TileKey.path` (``None`` when it is not one).

    >>> k = key_from_path("png/wards,parcels/WebMercatorQuad/3/1/2.512.png")
    >>> k.collections, (k.z, k.x, k.y), k.variant
    (('wards', 'parcels'), (3, 1, 2), '512')
    """
    parts = path.split("/")
    if len(parts) != 6:
        return None
    kind, colls, tms, z, x, name = parts
    bits = name.split(".")
    if not (z.isdigit() and x.isdigit() and bits[0].isdigit()):
        return None
    variant = ".".join(bits[1:-1])
    return TileKey(kind, tuple(colls.split(",")), tms, int(z), int(x), int(bits[0]), variant)


class TileCache:
    """Memory, then disk, then Redis; a hit in a slower level fills the faster ones."""

    def __init__(self, memory: MemoryCache | None = None, disk: DiskCache | None = None,
                 redis: RedisCache | None = None) -> None:
        self.memory = memory if memory is not None else MemoryCache(0)
        self.disk = disk
        self.redis = redis
        self.enabled = True  # False while invalidation cannot be trusted (LISTEN lost)

    @classmethod
    def from_settings(cls, settings: Settings) -> TileCache:
        """Backends from ``HUEGIS_TILE_CACHE_*`` and ``HUEGIS_REDIS_URL``."""
        disk = DiskCache(settings.tile_cache_path) if settings.tile_cache_disk else None
        redis = RedisCache(settings.redis_url) if settings.redis_url else None
        return cls(MemoryCache(settings.tile_cache_memory_mb * 1024 * 1024), disk, redis)

    async def get(self, key: TileKey) -> CachedTile | None:
        """The cached tile, or ``None`` (always ``None`` while the cache is disabled)."""
        if not self.enabled:
            return None
        tile = self.memory.get(key)
        if tile is not None:
            return tile
        if self.disk is not None:
            tile = self.disk.get(key)
        if tile is None and self.redis is not None:
            with contextlib.suppress(OSError, ConnectionError):
                tile = await self.redis.get(key)
            if tile is not None and self.disk is not None:
                self.disk.put(key, tile)
        if tile is not None:
            self.memory.put(key, tile)
        return tile

    async def put(self, key: TileKey, data: bytes, etag: str | None = None) -> CachedTile:
        """Store ``data`` (``b""`` for an empty tile) and return it with its ETag."""
        tile = CachedTile(bytes(data), etag or etag_of(data))
        if not self.enabled:
            return tile
        self.memory.put(key, tile)
        if self.disk is not None:
            await asyncio.to_thread(self.disk.put, key, tile) if len(tile.data) > 65536 \
                else self.disk.put(key, tile)
        if self.redis is not None:
            with contextlib.suppress(OSError, ConnectionError):
                await self.redis.put(key, tile)
        return tile

    async def drop(self, key: TileKey) -> None:
        """Forget one tile at every level."""
        self.memory.drop(key)
        if self.disk is not None:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                os.unlink(self.disk.root / key.path)
        if self.redis is not None:
            with contextlib.suppress(OSError, ConnectionError):
                await self.redis.client.delete(self.redis.PREFIX + key.path)

    async def invalidate(self, layer_id: str, boxes: Iterable[Box], memory: bool = True) -> int:
        """Drop every cached tile of every kind that shows ``layer_id`` and that one of the
        lon/lat ``boxes`` touches, at every zoom; returns how many entries went.
        ``memory=False``: the shared levels only (the caller has done memory already)."""
        boxes = [tuple(map(float, b)) for b in boxes]
        if not boxes:
            return 0
        n = self.memory.invalidate(layer_id, boxes) if memory else 0
        if self.disk is not None:
            n += await asyncio.to_thread(self.disk.invalidate, layer_id, boxes)
        if self.redis is not None:
            n += await self.redis.invalidate(layer_id, boxes)
        return n

    async def clear(self) -> None:
        """Drop everything this process can reach (memory, disk and Redis)."""
        self.memory.clear()
        if self.disk is not None:
            await asyncio.to_thread(self.disk.clear)
        if self.redis is not None:
            with contextlib.suppress(OSError, ConnectionError):
                await self.redis.clear()

    MARK = ".huegis-changes"

    async def read_mark(self) -> tuple[str, int] | None:
        """``(epoch, change id)`` the shared levels are current with (``None``: unknown)."""
        text = None
        if self.disk is not None:
            with contextlib.suppress(OSError):
                text = (self.disk.root / self.MARK).read_text()
        elif self.redis is not None:
            with contextlib.suppress(OSError, ConnectionError):
                raw = await self.redis.client.get("huegis:tilemark")
                text = raw.decode() if raw else None
        if not text or " " not in text:
            return None
        epoch, _, change = text.strip().partition(" ")
        return (epoch, int(change)) if change.isdigit() else None

    async def write_mark(self, epoch: str, change: int) -> None:
        text = f"{epoch} {change}"
        if self.disk is not None:
            self.disk.root.mkdir(parents=True, exist_ok=True)
            tmp = self.disk.root / f"{self.MARK}.{os.getpid()}"
            tmp.write_text(text)
            os.replace(tmp, self.disk.root / self.MARK)
        if self.redis is not None:
            with contextlib.suppress(OSError, ConnectionError):
                await self.redis.client.set("huegis:tilemark", text)

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.close()
