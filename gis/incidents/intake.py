"""New reports: validation, geocoding, routing, the SLA due date, duplicate suggestions, the
first event and the ``Idempotency-Key`` bookkeeping, all in one transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg

from gis import gazetteer
from gis.errors import Conflict, InvalidParameter, NotFound
from gis.incidents import (
    CATEGORIES,
    CHANNELS,
    DUPLICATE_DAYS,
    DUPLICATE_RADIUS_M,
    PRIORITIES,
    check_text,
)
from gis.incidents.events import NOTIFY_SQL
from gis.incidents.routing import (
    TOLERANCE_M,
    Ward,
    check_lonlat,
    route,
    route_sql,
    tolerance_deg,
)
from gis.workdays import LOCAL_TZ, due_at

log = logging.getLogger(__name__)
MAX_DESCRIPTION = 4000
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 .()-]{6,20}$")

# Everything a report row shows (alias i: incidents), then its ward's name, the reference of
# its master report and its public position.
_COLUMNS = """i.id, i.ref, i.category, i.description, i.status, i.priority, i.channel, i.address,
       i.ward_code, i.reporter_name, i.reporter_phone, i.reporter_email, i.sla_due_at,
       i.resolved_at, i.rating, i.source, i.created_at, i.updated_at, i.token, i.assignee,
       i.duplicate_of, i.device_id, i.account_id, i.attributes, ST_X(i.geom) AS lon,
       ST_Y(i.geom) AS lat"""
REPORT_SELECT = f"""
SELECT {_COLUMNS}, w.name AS ward_name, d.ref AS duplicate_of_ref,
       ST_X(i.geom_public) AS public_lon, ST_Y(i.geom_public) AS public_lat
FROM incidents i
LEFT JOIN admin_units w ON w.gso_code = i.ward_code
LEFT JOIN incidents d ON d.id = i.duplicate_of
"""
# Earlier reports of category $1 within $6 m (geodesic) of ($2, $3) and $5 days before $4,
# not themselves duplicates (nor report $7), the nearest first, $8 at most.
_DUPLICATES = """
SELECT i.id, i.ref, i.status, i.created_at,
       ST_Distance(i.geom::geography, ST_SetSRID(ST_MakePoint($2, $3), 4326)::geography)
         AS distance_m
FROM incidents i
WHERE i.category = $1 AND i.status <> 'duplicate'
  AND i.created_at BETWEEN $4::timestamptz - make_interval(days => $5) AND $4::timestamptz
  AND i.geom && ST_Expand(ST_SetSRID(ST_MakePoint($2, $3), 4326), 0.005)
  AND ST_DWithin(i.geom::geography, ST_SetSRID(ST_MakePoint($2, $3), 4326)::geography, $6)
  AND ($7::bigint IS NULL OR i.id <> $7)
ORDER BY distance_m, i.created_at LIMIT $8
"""
# A new report in one statement (one round trip, committed on its own unless inside a
# transaction): route the point (no row when it is outside Huế), insert the report, find its
# duplicate candidates, append its first event with them, notify the live feed, make the
# commit durable (synchronous_commit on for this transaction: nothing accepted is lost), and
# return the report. $1–$8 as in _DUPLICATES (the point, category, time), $9–$10 the routing
# tolerance (m, degrees), then the report's values.
_FILE = f"""
WITH w AS ({route_sql("$2", "$3", "$9", "$10")}),
n AS (SELECT nextval(pg_get_serial_sequence('incidents', 'id')) AS id),
ins AS (
  INSERT INTO incidents (id, ref, category, description, status, priority, channel, address,
    ward_code, reporter_name, reporter_phone, reporter_email, sla_due_at, source, created_at,
    updated_at, token, device_id, account_id, attributes, geom)
  SELECT n.id, 'PA-' || $11::text || '-' || CASE WHEN n.id >= 1000000 THEN n.id::text
         ELSE lpad(n.id::text, 7, '0') END,
         $1, $12, 'received', $13, $14, $15, w.gso_code, $16, $17, $18, $19, 'report', $4, $4,
         $20, $21, $22, $23::jsonb, ST_SetSRID(ST_MakePoint($2, $3), 4326)
  FROM n, w RETURNING *),
dups AS ({_DUPLICATES}),
ev AS (
  INSERT INTO incident_events (incident_id, actor, kind, from_status, to_status, data)
  SELECT ins.id, $24, 'received', NULL, 'received', jsonb_build_object(
           'channel', $14::text, 'ward_code', w.gso_code,
           'distance_m', round(w.distance_m::numeric, 1),
           'duplicate_candidates', coalesce((SELECT jsonb_agg(ref ORDER BY distance_m,
                                                              created_at) FROM dups), '[]'))
  FROM ins, w RETURNING id, incident_id),
nt AS (SELECT {NOTIFY_SQL.format(event="ev.id", incident="ev.incident_id", kind="'received'",
                                 ward="ins.ward_code", category="ins.category")}
       FROM ev, ins),
durable AS (SELECT set_config('synchronous_commit', 'on', true))
SELECT {_COLUMNS}, w.name AS ward_name, NULL::text AS duplicate_of_ref,
       ST_X(i.geom_public) AS public_lon, ST_Y(i.geom_public) AS public_lat,
       (SELECT count(*) FROM nt) + (SELECT count(*) FROM durable) AS done
FROM ins i, w
"""


@dataclass
class NewReport:
    """A report as filed (by a citizen, an operator for a caller, or a partner system)."""

    category: str
    description: str | None = None
    lon: float | None = None
    lat: float | None = None
    address: str | None = None
    priority: str = "normal"
    channel: str = "app"
    reporter_name: str | None = None
    reporter_phone: str | None = None
    reporter_email: str | None = None
    device_id: str | None = None
    account_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """400 on anything the service would refuse (before touching the database)."""
        if self.category not in CATEGORIES:
            raise InvalidParameter(f"service_code: unknown {self.category!r}; one of "
                                   f"{', '.join(CATEGORIES)}")
        if self.description is not None and len(self.description) > MAX_DESCRIPTION:
            raise InvalidParameter(f"description: at most {MAX_DESCRIPTION} characters "
                                   f"(got {len(self.description)})")
        if self.priority not in PRIORITIES:
            raise InvalidParameter(f"priority: one of {', '.join(PRIORITIES)}")
        if self.channel not in CHANNELS:
            raise InvalidParameter(f"channel: one of {', '.join(CHANNELS)}")
        if (self.lon is None) != (self.lat is None):
            raise InvalidParameter("lat and long: give both, or an address_string")
        if self.lon is None and not (self.address or "").strip():
            raise InvalidParameter("location: give lat and long, or an address_string")
        if self.lon is not None:
            check_lonlat(self.lon, self.lat)
        if self.reporter_email and not _EMAIL.match(self.reporter_email):
            raise InvalidParameter("email: not an e-mail address")
        if self.reporter_phone and not _PHONE.match(self.reporter_phone):
            raise InvalidParameter("phone: not a phone number")
        for name in ("address", "reporter_name", "device_id", "account_id"):
            value = getattr(self, name)
            if value is not None and len(value) > 500:
                raise InvalidParameter(f"{name}: at most 500 characters")
        for name in ("description", "address", "reporter_name", "reporter_phone",
                     "reporter_email", "device_id", "account_id"):
            check_text(name, getattr(self, name))
        for key, value in self.attributes.items():
            check_text(f"attribute[{key}]", value if isinstance(value, str) else None)

    def fingerprint(self) -> str:
        """Hash of the request, to tell a retry from another report under the same key."""
        text = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


async def locate(conn: asyncpg.Connection | asyncpg.Pool, report: NewReport
                 ) -> tuple[float, float, Ward]:
    """The report's point (geocoding ``address`` when there are no coordinates) and ward."""
    lon, lat = report.lon, report.lat
    if lon is None or lat is None:
        place = await gazetteer.geocode(conn, report.address or "")
        if place is None:
            raise InvalidParameter(f"address_string: {report.address!r} could not be placed "
                                   "in Huế; give lat and long")
        lon, lat = place.lon, place.lat
    return lon, lat, await route(conn, lon, lat)


async def fetch_report(conn: asyncpg.Connection | asyncpg.Pool, ref: str,
                       for_update: bool = False) -> asyncpg.Record:
    """The report with reference ``ref`` ('PA-2026-0001234') or numeric id; 404 otherwise."""
    ref = (ref or "").strip()
    if ref.isdigit() and len(ref) <= 18:  # a bigint id; longer digit strings match nothing
        where, arg = "i.id = $1", int(ref)
    else:
        where, arg = "i.ref = $1", ref
    lock = " FOR UPDATE OF i" if for_update else ""
    row = await conn.fetchrow(f"{REPORT_SELECT} WHERE {where}{lock}", arg)
    if row is None:
        raise NotFound(f"no report {ref!r}")
    return row


async def duplicate_candidates(conn: asyncpg.Connection | asyncpg.Pool, category: str,
                               lon: float, lat: float, at: dt.datetime,
                               exclude_id: int | None = None, limit: int = 5) -> list[dict]:
    """Earlier reports of the same category within 250 m (geodesic) and 14 days before ``at``,
    that are not themselves duplicates: the nearest first."""
    rows = await conn.fetch(_DUPLICATES, category, lon, lat, at, DUPLICATE_DAYS,
                            DUPLICATE_RADIUS_M, exclude_id, limit)
    return [{"id": r["id"], "ref": r["ref"], "status": r["status"],
             "created_at": r["created_at"].isoformat(),
             "distance_m": round(float(r["distance_m"]), 1)} for r in rows]


async def create_report(pool: asyncpg.Pool, report: NewReport, actor: str,
                        idempotency_key: str | None = None) -> tuple[asyncpg.Record, bool]:
    """File a report: validated, placed, routed, given its due date and token, its duplicate
    candidates noted in the first event, committed durably with that event (one statement,
    one round trip) before the answer.

    With ``idempotency_key`` a retry returns the first report (``created`` False) instead of
    filing a twin; the same key with another request is a 409.

    Returns
    -------
    (row, created)
    """
    report.validate()
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
        raise InvalidParameter("Idempotency-Key: 1 to 200 characters")
    if not idempotency_key:
        row = await _file(pool, report, actor)
        if row["id"] % COMPACT_EVERY == 0:
            await compact(pool)
        return row, True
    fingerprint = report.fingerprint()
    existing = await _replayed(pool, idempotency_key, fingerprint)
    if existing is not None:
        return existing, False
    async with pool.acquire() as conn, conn.transaction():
        got = await conn.fetchval(
            "INSERT INTO incident_idempotency (key, request_hash) VALUES ($1, $2) "
            "ON CONFLICT (key) DO NOTHING RETURNING key", idempotency_key, fingerprint)
        if got is not None:
            row = await _file(conn, report, actor)
            await conn.execute("UPDATE incident_idempotency SET incident_id = $2 WHERE key = $1",
                               idempotency_key, row["id"])
            return row, True
    # a concurrent twin committed first
    replay = await _replayed(pool, idempotency_key, fingerprint)
    assert replay is not None
    return replay, False


# How often (in reports) the dashboard's rollups fold in what new reports appended.
COMPACT_EVERY = 256


async def compact(conn: asyncpg.Connection | asyncpg.Pool) -> None:
    """Fold what new reports appended (migration 0009's delta tables) into the dashboard's
    rollups, unless another connection is doing it."""
    try:
        await conn.execute("SELECT huegis_incident_dash_compact()")
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        # the report is committed already: its answer must not fail (readers add the deltas)
        log.warning("dashboard rollups not compacted: %s", exc)


async def _file(conn: asyncpg.Connection | asyncpg.Pool, report: NewReport, actor: str
                ) -> asyncpg.Record:
    """Insert the report with its first event (``_FILE``); a point outside Huế is refused
    with the router's own message."""
    lon, lat = report.lon, report.lat
    if lon is None or lat is None:
        lon, lat, _ = await locate(conn, report)
    now = dt.datetime.now(dt.UTC)
    row = await conn.fetchrow(
        _FILE, report.category, lon, lat, now, DUPLICATE_DAYS, DUPLICATE_RADIUS_M, None, 5,
        TOLERANCE_M, tolerance_deg(TOLERANCE_M), str(now.astimezone(LOCAL_TZ).year),
        report.description, report.priority, report.channel, report.address,
        report.reporter_name, report.reporter_phone, report.reporter_email,
        due_at(now, report.category, report.priority == "urgent"), secrets.token_urlsafe(18),
        report.device_id, report.account_id,
        json.dumps(report.attributes, ensure_ascii=False), actor)
    if row is None:
        await route(conn, lon, lat)  # raises OutsideHue
        raise AssertionError("a routed report was not filed")
    return row


async def _replayed(pool: asyncpg.Pool, key: str, fingerprint: str) -> asyncpg.Record | None:
    row = await pool.fetchrow(
        "SELECT request_hash, incident_id FROM incident_idempotency WHERE key = $1", key)
    if row is None:
        return None
    if row["request_hash"] != fingerprint:
        raise Conflict("Idempotency-Key was already used for a different report")
    return await fetch_report(pool, str(row["incident_id"]))
