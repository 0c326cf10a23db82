"""Keeping the tile cache exact: LISTEN to the layer tables' triggers and drop what changed.

Every write to a layer table (API, import, ``psql``…) fires a statement trigger (migration
0005) that sends ``pg_notify('huegis_tiles', {"layer": id, "boxes": [[w, s, e, n], …]})``
with the lon/lat boxes of the old and new rows, delivered when the transaction commits.
Each worker holds one dedicated connection LISTENing on that channel and, per message:

1. bumps its ``generation`` and drops the matching tiles from its memory at once;
2. drops them from the shared levels (disk, Redis) — while that runs, the shared levels are
   bypassed, so no worker re-reads a stale file;
3. a tile computed from a snapshot older than a message is served but never stored
   (``generation`` changed meanwhile).

A worker that loses its LISTEN connection disables its cache (every tile is computed) until
it has reconnected. Every message is also logged in ``tiles_changes``: on (re)connecting, a
worker replays the changes after the cache's watermark (``<cache_dir>/.huegis-changes`` or a
Redis key), so writes made while nobody listened — a stopped server, a seeded cache — are
never served stale; a cache of another database, or older than the log, is cleared.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from gis.settings import Settings
from gis.tiles.cache import CachedTile, TileCache, TileKey, etag_of

CHANNEL = "huegis_tiles"
LISTENER_NAME = "huegis-tiles-listen"
# Replay this many change ids before the watermark too: ids are taken at insert time, so a
# transaction may commit after a later id (over-invalidating a little is harmless).
REPLAY_MARGIN = 200
# Shared-level (disk, Redis) invalidations of the messages arriving within this many seconds
# are made together: a burst of writes (hundreds of reports a second) walks the disk cache
# once, not once per report. Memory is invalidated at once, message by message.
SHARED_BATCH_S = 0.02
REBUILD_LOCK = 7_420_551  # advisory lock: one rebuild of the generalized views at a time
log = logging.getLogger("huegis.tiles")


class TileService:
    """The tile cache of one worker and the listener that keeps it exact."""

    def __init__(self, settings: Settings, cache: TileCache | None = None) -> None:
        self.settings = settings
        self.cache = cache or TileCache.from_settings(settings)
        self.cache.enabled = False  # until LISTEN is established
        self.generation = 0
        # Tiles built in the database at once by this worker (see the setting).
        self.build_slots = asyncio.Semaphore(settings.tile_build_concurrency)
        self.pending = 0  # shared-level invalidations in flight
        self.messages = 0
        self.connected = asyncio.Event()
        self._first_attempt = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._jobs: set[asyncio.Task] = set()
        self._conn: asyncpg.Connection | None = None
        self.epoch: str | None = None
        self.last_change: int | None = None  # id of the last change applied
        self._rebuild: asyncio.Future | None = None
        self._queued: dict[str, list] = {}  # layer -> boxes waiting for the shared levels
        self._queued_n = 0
        self._flush_job: asyncio.Future | None = None
        self._extents: dict[str, tuple[float, float, float, float] | None] = {}
        self._extent_jobs: dict[str, asyncio.Future] = {}

    # ------------------------------------------------------------------ listener
    async def start(self, wait_s: float = 5.0) -> None:
        """Start listening; wait (a little) for the connection so caching starts at once."""
        self._task = asyncio.create_task(self._run())
        with contextlib.suppress(TimeoutError):  # never delays start-up when the DB is down
            await asyncio.wait_for(self._first_attempt.wait(), wait_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._rebuild is not None:
            self._rebuild.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._rebuild
        for job in list(self._extent_jobs.values()):
            job.cancel()
        for job in list(self._jobs) + list(self._extent_jobs.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await job
        await self.cache.close()

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            try:
                conn = await asyncpg.connect(self.settings.dsn, timeout=10, server_settings={
                    "application_name": LISTENER_NAME})
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                self._first_attempt.set()
                log.warning("tile invalidation: cannot LISTEN (%s); cache disabled", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c, ev=lost: ev.set())
            try:
                await conn.add_listener(CHANNEL, self._on_notify)
                await self.catch_up(conn)
                self._conn = conn
                self.cache.enabled = True
                self.connected.set()
                self._first_attempt.set()
                backoff = 0.2
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), 5.0)
                    except TimeoutError:
                        await asyncio.wait_for(conn.fetchval("SELECT 1"), 5.0)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                self._first_attempt.set()
                log.warning("tile invalidation: LISTEN connection lost (%s)", exc)
            finally:
                self._disconnected()
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    async def catch_up(self, conn: asyncpg.Connection) -> int:
        """Replay the changes logged since the cache's watermark (all of them when the cache
        belongs to another database or is older than the log): returns how many."""
        epoch = await conn.fetchval("SELECT epoch FROM tiles_state LIMIT 1")
        top = await conn.fetchval("SELECT coalesce(max(id), 0) FROM tiles_changes")
        low = await conn.fetchval("SELECT min(id) FROM tiles_changes")
        start = self.last_change
        if start is None:
            mark = await self.cache.read_mark()
            start = mark[1] if mark is not None and mark[0] == epoch else None
        if start is None or (low is not None and start < low - 1) or start > top:
            await self.cache.clear()
            replayed = 0
        else:
            rows = await conn.fetch(
                "SELECT id, layer, boxes::text FROM tiles_changes WHERE id > $1 ORDER BY id",
                start - REPLAY_MARGIN)
            for row in rows:
                boxes = [tuple(b) for b in json.loads(row["boxes"])]
                await self.cache.invalidate(row["layer"], boxes)
            replayed = len(rows)
        if await conn.fetchval("SELECT blocks_dirty FROM tiles_state LIMIT 1"):
            self.schedule_rebuild()
        self.epoch, self.last_change = epoch, max(top, start or 0)
        await self.cache.write_mark(epoch, self.last_change)
        self.generation += 1
        return replayed

    def schedule_rebuild(self) -> None:
        """Rebuild the generalized views in the background after a bulk load (one worker
        of all does it, under an advisory lock; its NOTIFY then invalidates everyone)."""
        if self._rebuild is None or self._rebuild.done():
            self._rebuild = asyncio.ensure_future(self._rebuild_views())

    async def _rebuild_views(self) -> None:
        try:
            conn = await asyncpg.connect(self.settings.dsn, timeout=10)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return
        try:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", REBUILD_LOCK):
                return
            try:
                if await conn.fetchval("SELECT blocks_dirty FROM tiles_state LIMIT 1"):
                    async with conn.transaction():
                        await conn.execute("SELECT huegis_tiles_rebuild()")
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", REBUILD_LOCK)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("rebuilding the generalized tile views failed: %s", exc)
        finally:
            await conn.close()

    def _disconnected(self) -> None:
        self._conn = None
        self.connected.clear()
        self.cache.enabled = False
        self.generation += 1
        self.cache.memory.clear()
        self._extents.clear()

    async def drop_connection(self) -> None:
        """Close the LISTEN connection (tests: the worker must stop caching, then recover)."""
        if self._conn is not None:
            self._conn.terminate()

    def _on_notify(self, _conn, _pid, _channel, payload: str) -> None:
        try:
            msg = json.loads(payload)
            layer, boxes = msg["layer"], [tuple(b) for b in msg["boxes"]]
            change = int(msg.get("id", 0))
        except (ValueError, KeyError, TypeError):
            log.warning("tile invalidation: bad message %r", payload[:200])
            return
        self.apply(layer, boxes, change)
        if msg.get("rebuild"):
            self.schedule_rebuild()

    def apply(self, layer: str, boxes: list[tuple[float, float, float, float]],
              change: int = 0) -> None:
        """Invalidate ``layer`` inside ``boxes``: memory now, shared levels in the background
        (bypassed until done)."""
        self.messages += 1
        self.generation += 1
        self._widen_extent(layer, boxes)
        self.cache.memory.invalidate(layer, boxes)
        if self.last_change is not None and change > self.last_change:
            self.last_change = change
        if self.cache.disk is None and self.cache.redis is None:
            return
        self.pending += 1
        self._queued.setdefault(layer, []).extend(boxes)
        self._queued_n += 1
        if self._flush_job is None:
            job = self._flush_job = asyncio.ensure_future(self._shared())
            self._jobs.add(job)
            job.add_done_callback(self._jobs.discard)

    async def _shared(self) -> None:
        """Invalidate the shared levels for every message queued so far (see
        ``SHARED_BATCH_S``); they stay bypassed (``pending``) until this is done."""
        await asyncio.sleep(SHARED_BATCH_S)
        queued, n = self._queued, self._queued_n
        self._queued, self._queued_n, self._flush_job = {}, 0, None
        try:
            for layer, boxes in queued.items():
                await self.cache.invalidate(layer, boxes, memory=False)
            if self.epoch is not None and self.last_change is not None:
                await self.cache.write_mark(self.epoch, self.last_change)
        except Exception:  # noqa: BLE001 - never lose the worker over one message
            log.exception("tile invalidation of %s failed; clearing the cache",
                          ", ".join(queued))
            await self.cache.clear()
        finally:
            self.pending -= n
            self.generation += 1

    # ------------------------------------------------------------------ extents
    def known_extent(self, pool, layer) -> tuple[bool, tuple[float, float, float, float] | None]:
        """``(True, extent)`` when this worker knows the layer's lon/lat extent (``None``: no
        rows), so a tile outside it is empty without a query; ``(False, None)`` while it is
        unknown. The first call starts loading it in the background (one full scan per
        layer and worker, never on a request's path, never twice at once); it is widened
        by every change message and not kept while the cache is off (changes could be
        missed)."""
        if layer.id in self._extents:
            return True, self._extents[layer.id]
        if self.cache.enabled and layer.id not in self._extent_jobs:
            job = asyncio.ensure_future(self._load_extent(pool, layer))
            self._extent_jobs[layer.id] = job
            job.add_done_callback(lambda _job, k=layer.id: self._extent_jobs.pop(k, None))
        return False, None

    async def load_extents(self, pool, layers) -> None:
        """Load the extents of ``layers`` not known yet, one after another (the start-up
        warm-up calls this, so the full scans are not paid while the first maps load)."""
        for layer in layers:
            known, _ = self.known_extent(pool, layer)
            job = self._extent_jobs.get(layer.id)
            if not known and job is not None:
                await asyncio.shield(job)

    async def _load_extent(self, pool, layer) -> None:
        from gis.sqlbuild import ident, table_ref

        generation = self.generation
        try:
            row = await pool.fetchrow(
                f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT "
                f"ST_Extent({ident(layer.geometry_column)}) AS e FROM {table_ref(layer)}) s")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("extent of %s not loaded: %s", layer.id, exc)
            return
        box = tuple(row) if row is not None and row[0] is not None else None
        if generation == self.generation and self.cache.enabled:
            self._extents[layer.id] = box  # type: ignore[assignment]

    def _widen_extent(self, layer: str, boxes: list) -> None:
        if layer not in self._extents:
            return
        old = self._extents[layer]
        xs = [b[0] for b in boxes] + [b[2] for b in boxes] + ([old[0], old[2]] if old else [])
        ys = [b[1] for b in boxes] + [b[3] for b in boxes] + ([old[1], old[3]] if old else [])
        self._extents[layer] = (min(xs), min(ys), max(xs), max(ys))

    # ------------------------------------------------------------------ reading
    async def get_or_make(self, key: TileKey, make: Callable[[], Awaitable[bytes]],
                          since: int | None = None) -> CachedTile:
        """The cached tile, or ``make()``'s bytes (stored unless something changed while
        they were being made, or since generation ``since`` when the caller read state
        before)."""
        generation = self.generation if since is None else since
        if self.pending == 0:
            hit = await self.cache.get(key)
            if hit is not None:
                return hit
        data = await make()
        if self.pending == 0 and generation == self.generation and self.cache.enabled:
            tile = await self.cache.put(key, data)
            if generation != self.generation:
                # A change came while it was being stored (a big tile is written to disk
                # in a thread): its invalidation may have run before the file landed.
                await self.cache.drop(key)
            return tile
        return CachedTile(bytes(data), etag_of(data))
