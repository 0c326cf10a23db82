"""The append-only history of every report: one row in ``incident_events`` per change (actor,
time, status before/after, data with the values before and after), written in the change's own
transaction, and announced with ``pg_notify`` so every worker's live feed sees it on commit."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from gis.incidents import check_text

# The NOTIFY channel of the live feed (payload: event id, incident id, ward, category, kind).
CHANNEL = "huegis_incident_events"
# The NOTIFY of one event, over SQL expressions of its values (to run inside a statement).
NOTIFY_SQL = (f"pg_notify('{CHANNEL}', json_build_object('id', {{event}}, "
              "'incident_id', {incident}::bigint, 'kind', {kind}::text, "
              "'ward_code', {ward}::text, 'category', {category}::text)::text)")


async def record(conn: asyncpg.Connection, incident: asyncpg.Record | dict, actor: str,
                 kind: str, from_status: str | None = None, to_status: str | None = None,
                 note: str | None = None, data: dict[str, Any] | None = None) -> int:
    """Append an event for ``incident`` (a row with id, ward_code, category) and notify the
    feed; returns the event id. Call inside the transaction that makes the change."""
    check_text("note", note)
    row = await conn.fetchrow(
        "WITH e AS (INSERT INTO incident_events (incident_id, actor, kind, from_status, "
        "to_status, note, data) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) RETURNING id) "
        "SELECT e.id, " + NOTIFY_SQL.format(event="e.id", incident="$1", kind="$3",
                                             ward="$8", category="$9") + " FROM e",
        incident["id"], actor, kind, from_status, to_status, note,
        json.dumps(data or {}, ensure_ascii=False, default=str),
        incident["ward_code"], incident["category"])
    return int(row["id"])
