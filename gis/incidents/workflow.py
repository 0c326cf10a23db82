"""The inspector workflow: the state machine, assignment, moving and recategorizing (which
re-route the report and recompute its due date), merging duplicates, the reporter's rating,
and the overdue list. Every change locks the report, checks the caller's ward, updates it and
appends its event in one transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from gis.auth import Principal
from gis.errors import Conflict, Forbidden, InvalidParameter
from gis.incidents import (
    CATEGORIES,
    OPEN,
    POOR_RATING,
    PRIORITIES,
    TRANSITIONS,
    check_text,
)
from gis.incidents.events import record
from gis.incidents.intake import fetch_report
from gis.incidents.routing import check_lonlat, route
from gis.workdays import due_at

Change = Callable[[asyncpg.Connection, asyncpg.Record], Awaitable[None]]


def check_transition(before: str, after: str) -> None:
    """409 unless ``before`` → ``after`` is a legal change.

    >>> check_transition("received", "assigned")
    >>> check_transition("received", "resolved")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gis.errors.Conflict: a received report cannot become resolved (allowed: ...)
    """
    allowed = TRANSITIONS.get(before, ())
    if after not in allowed:
        raise Conflict(f"a {before} report cannot become {after} (allowed: "
                       f"{', '.join(allowed) or 'nothing'})")


async def _change(pool: asyncpg.Pool, ref: str, principal: Principal | None,
                  change: Change) -> asyncpg.Record:
    async with pool.acquire() as conn, conn.transaction():
        row = await fetch_report(conn, ref, for_update=True)
        if principal is not None:
            principal.require_ward(row["ward_code"])
        await change(conn, row)
        return await fetch_report(conn, str(row["id"]))


async def transition(pool: asyncpg.Pool, ref: str, to: str, actor: str,
                     principal: Principal | None = None, note: str | None = None
                     ) -> asyncpg.Record:
    """Move a report to status ``to`` (409 when not a legal change). Resolving stamps
    ``resolved_at``; reopening clears it; assigning without an assignee gives it to the ward."""
    if to == "duplicate":
        raise InvalidParameter("mark duplicates with their master report (POST …/duplicate)")

    async def change(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
        check_transition(row["status"], to)
        assignee = row["assignee"] or (f"ward:{row['ward_code']}" if to == "assigned" else None)
        await conn.execute(
            "UPDATE incidents SET status = $2, assignee = $3, resolved_at = CASE "
            "WHEN $2 = 'resolved' THEN now() WHEN $2 = 'reopened' THEN NULL "
            "ELSE resolved_at END WHERE id = $1", row["id"], to, assignee)
        data: dict[str, Any] = {}
        if assignee != row["assignee"]:
            data["assignee"] = {"before": row["assignee"], "after": assignee}
        await record(conn, row, actor, to, row["status"], to, note, data)

    return await _change(pool, ref, principal, change)


async def add_note(pool: asyncpg.Pool, ref: str, note: str, actor: str,
                   principal: Principal | None = None) -> asyncpg.Record:
    """Add a note to a report's history without changing anything else (status kept)."""
    note = (note or "").strip()
    if not note:
        raise InvalidParameter("note: the text of the note is required")

    async def change(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
        await record(conn, row, actor, "note", row["status"], row["status"], note)

    return await _change(pool, ref, principal, change)


async def assign(pool: asyncpg.Pool, ref: str, assignee: str, actor: str,
                 principal: Principal | None = None, note: str | None = None) -> asyncpg.Record:
    """Assign a report to a ward unit (``ward:19777``) or an inspector (``inspector:name``);
    a received or reopened report becomes assigned, an open one keeps its status."""
    assignee = check_text("assignee", (assignee or "").strip()) or ""
    if not assignee or len(assignee) > 120:
        raise InvalidParameter("assignee: a ward unit (ward:CODE) or an inspector's name")

    async def change(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
        before = row["status"]
        if before not in OPEN:
            raise Conflict(f"a {before} report cannot be assigned; reopen it first")
        after = "assigned" if before in ("received", "reopened") else before
        await conn.execute("UPDATE incidents SET status = $2, assignee = $3 WHERE id = $1",
                           row["id"], after, assignee)
        await record(conn, row, actor, "assigned", before, after, note,
                     {"assignee": {"before": row["assignee"], "after": assignee}})

    return await _change(pool, ref, principal, change)


async def correct(pool: asyncpg.Pool, ref: str, actor: str, principal: Principal | None = None,
                  lon: float | None = None, lat: float | None = None,
                  category: str | None = None, priority: str | None = None,
                  note: str | None = None) -> asyncpg.Record:
    """Correct a report's location, category or priority. A new point or category re-routes
    it (the ward may change) and a new category or priority recomputes the due date; the event
    records every value before and after."""
    if (lon is None) != (lat is None):
        raise InvalidParameter("lon and lat: give both")
    if lon is not None:
        check_lonlat(lon, lat)
    if category is not None and category not in CATEGORIES:
        raise InvalidParameter(f"category: one of {', '.join(CATEGORIES)}")
    if priority is not None and priority not in PRIORITIES:
        raise InvalidParameter(f"priority: one of {', '.join(PRIORITIES)}")
    if lon is None and category is None and priority is None:
        raise InvalidParameter("nothing to change: give lon+lat, category or priority")

    async def change(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
        new_lon, new_lat = (lon, lat) if lon is not None else (row["lon"], row["lat"])
        ward = await route(conn, new_lon, new_lat)
        cat = category or row["category"]
        prio = priority or row["priority"]
        due = due_at(row["created_at"], cat, prio == "urgent")
        await conn.execute(
            "UPDATE incidents SET geom = ST_SetSRID(ST_MakePoint($2, $3), 4326), ward_code = $4,"
            " category = $5, priority = $6, sla_due_at = $7 WHERE id = $1",
            row["id"], new_lon, new_lat, ward.code, cat, prio, due)
        data: dict[str, Any] = {}
        for key, before, after in (("lon", row["lon"], new_lon), ("lat", row["lat"], new_lat),
                                   ("ward_code", row["ward_code"], ward.code),
                                   ("category", row["category"], cat),
                                   ("priority", row["priority"], prio),
                                   ("sla_due_at", row["sla_due_at"], due)):
            if before != after:
                data[key] = {"before": before, "after": after}
        kind = "rerouted" if ward.code != row["ward_code"] else "corrected"
        await record(conn, {**dict(row), "ward_code": ward.code, "category": cat}, actor, kind,
                     row["status"], row["status"], note, data)

    return await _change(pool, ref, principal, change)


async def mark_duplicate(pool: asyncpg.Pool, ref: str, master_ref: str, actor: str,
                         principal: Principal | None = None, note: str | None = None
                         ) -> asyncpg.Record:
    """Link a report as a duplicate of ``master_ref`` (merge): its status becomes duplicate,
    the master's history notes the merge. A master cannot itself be a duplicate."""

    async def change(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
        master = await fetch_report(conn, master_ref, for_update=True)
        if master["id"] == row["id"]:
            raise InvalidParameter("a report cannot duplicate itself")
        if master["status"] == "duplicate":
            raise Conflict(f"{master['ref']} is itself a duplicate of "
                           f"{master['duplicate_of_ref']}; link to that one")
        check_transition(row["status"], "duplicate")
        await conn.execute("UPDATE incidents SET status = 'duplicate', duplicate_of = $2 "
                           "WHERE id = $1", row["id"], master["id"])
        await conn.execute("UPDATE incidents SET duplicate_of = $2 WHERE duplicate_of = $1",
                           row["id"], master["id"])
        await record(conn, row, actor, "duplicate", row["status"], "duplicate",
                     note or f"Trùng với phản ánh {master['ref']}.",
                     {"duplicate_of": master["ref"]})
        await record(conn, master, actor, "merged", master["status"], master["status"], None,
                     {"duplicate": row["ref"]})

    return await _change(pool, ref, principal, change)


async def rate(pool: asyncpg.Pool, ref: str, token: str, rating: int,
               comment: str | None = None) -> asyncpg.Record:
    """The reporter's satisfaction (1–5) with a resolved report, proved by the report's token
    (403 otherwise). A rating of 2 or less reopens the report."""
    if not isinstance(rating, int) or not 1 <= rating <= 5:
        raise InvalidParameter("rating: an integer from 1 to 5")
    if comment is not None and len(comment) > 1000:
        raise InvalidParameter("comment: at most 1000 characters")

    async def change(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
        if not token or row["token"] != token:
            raise Forbidden("the report's token is needed to rate it")
        if row["status"] != "resolved":
            raise Conflict(f"only a resolved report can be rated (this one is {row['status']})")
        await conn.execute("UPDATE incidents SET rating = $2 WHERE id = $1", row["id"], rating)
        await record(conn, row, "citizen", "rated", None, None, comment,
                     {"rating": {"before": row["rating"], "after": rating}})
        if rating <= POOR_RATING:
            await conn.execute("UPDATE incidents SET status = 'reopened', resolved_at = NULL "
                               "WHERE id = $1", row["id"])
            await record(conn, row, "system", "reopened", "resolved", "reopened",
                         f"Người phản ánh chưa hài lòng ({rating}/5 sao), mở lại phản ánh.")

    return await _change(pool, ref, None, change)


async def overdue(conn: asyncpg.Connection | asyncpg.Pool, ward_code: str | None = None,
                  at: dt.datetime | None = None, limit: int = 500) -> list[asyncpg.Record]:
    """Open reports past their due date (oldest due first), in one ward or all."""
    return await conn.fetch(
        "SELECT i.id, i.ref, i.category, i.status, i.priority, i.ward_code, i.assignee, "
        "i.created_at, i.sla_due_at FROM incidents i "
        "WHERE i.status IN ('received', 'assigned', 'in_progress', 'reopened') "
        "AND i.sla_due_at < coalesce($2, now()) AND ($1::text IS NULL OR i.ward_code = $1) "
        "ORDER BY i.sla_due_at, i.id LIMIT $3", ward_code, at, limit)


async def history(conn: asyncpg.Connection | asyncpg.Pool, incident_id: int
                  ) -> list[asyncpg.Record]:
    """The report's events, oldest first."""
    return await conn.fetch(
        "SELECT id, at, actor, kind, from_status, to_status, note, data FROM incident_events "
        "WHERE incident_id = $1 ORDER BY at, id", incident_id)
