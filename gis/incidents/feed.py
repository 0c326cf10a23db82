"""The live feed of report changes: each event is announced by ``pg_notify`` on commit
(:mod:`.events`), so a listener in any worker process sees every change. A subscriber gets
the events after a known id first (resuming with ``Last-Event-ID``), then the live ones,
filtered by ward and category."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from gis.incidents.events import CHANNEL

_EVENTS = """
SELECT e.id, e.at, e.kind, e.from_status, e.to_status, e.actor, e.note, i.ref, i.ward_code,
       i.category
FROM incident_events e JOIN incidents i ON i.id = e.incident_id
WHERE e.id = ANY($1::bigint[]) OR (e.id > $2 AND $3)
"""
_FILTER = """
  AND ($4::text[] IS NULL OR i.ward_code = ANY($4))
  AND ($5::text[] IS NULL OR i.category = ANY($5))
ORDER BY e.id LIMIT $6
"""
BACKLOG_LIMIT = 1000


@dataclass(frozen=True)
class FeedFilter:
    """Which events a subscriber gets: wards (None: all) and categories (None: all)."""

    wards: frozenset[str] | None = None
    categories: frozenset[str] | None = None

    def matches(self, payload: dict) -> bool:
        return ((self.wards is None or payload.get("ward_code") in self.wards)
                and (self.categories is None or payload.get("category") in self.categories))

    def args(self) -> tuple[list[str] | None, list[str] | None]:
        return (sorted(self.wards) if self.wards is not None else None,
                sorted(self.categories) if self.categories is not None else None)


async def events_after(conn: asyncpg.Connection | asyncpg.Pool, after_id: int, flt: FeedFilter,
                       limit: int = BACKLOG_LIMIT) -> list[asyncpg.Record]:
    """Events with an id above ``after_id`` that pass the filter, oldest first."""
    return await conn.fetch(_EVENTS + _FILTER, [], after_id, True, *flt.args(), limit)


async def events_by_id(conn: asyncpg.Connection | asyncpg.Pool, ids: Iterable[int],
                       flt: FeedFilter) -> list[asyncpg.Record]:
    ids = list(ids)
    return await conn.fetch(_EVENTS + _FILTER, ids, 0, False, *flt.args(), len(ids) or 1)


@asynccontextmanager
async def listen(dsn: str) -> AsyncIterator[asyncio.Queue]:
    """A dedicated connection LISTENing on the feed channel; yields a queue of the decoded
    payloads (event id, incident id, kind, ward, category)."""
    queue: asyncio.Queue = asyncio.Queue(maxsize=10_000)

    def on_notify(_conn, _pid, _channel, payload: str) -> None:
        try:
            queue.put_nowait(json.loads(payload))
        except (ValueError, asyncio.QueueFull):
            pass

    conn = await asyncpg.connect(dsn)
    try:
        await conn.add_listener(CHANNEL, on_notify)
        yield queue
    finally:
        try:
            await conn.remove_listener(CHANNEL, on_notify)
        finally:
            await conn.close()


def public_event(row: asyncpg.Record, staff: bool) -> dict:
    """An event as the feed shows it: staff see the actor and the note, others do not."""
    out = {"id": row["id"], "at": row["at"].isoformat(), "ref": row["ref"],
           "kind": row["kind"], "from_status": row["from_status"],
           "to_status": row["to_status"], "ward_code": row["ward_code"],
           "category": row["category"]}
    if staff:
        out["actor"] = row["actor"]
        out["note"] = row["note"]
    return out
