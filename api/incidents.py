"""Incidents for staff: intake, the inspector workflow, photos and the live feed."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import PoolDep, PrincipalDep, SettingsDep, base_url
from gis.auth import Principal
from gis.errors import Forbidden, InvalidParameter, PayloadTooLarge
from gis.incidents import CATEGORIES, OPEN, feed, photos, workflow
from gis.incidents.intake import (
    REPORT_SELECT,
    NewReport,
    create_report,
    duplicate_candidates,
    fetch_report,
)
from gis.settings import Settings
from layers.incidents import SENSITIVE_CATEGORIES

WORKERS = ("inspector", "admin")  # roles that work reports
STAFF_FIELDS = ("reporter_name", "reporter_phone", "reporter_email", "device_id", "account_id",
                "assignee")


def actor_of(principal: Principal, channel: str | None = None) -> str:
    """How the history names the caller: ``inspector:lan``, ``citizen:app``…"""
    if principal.authenticated:
        return f"{principal.role}:{principal.name}"
    return f"public:{channel or 'web'}"


def sees_private(principal: Principal) -> bool:
    """Whether the caller may read reporters' details (the catalog gives them to inspectors;
    admin always)."""
    return principal.may_read(("inspector",))


def _iso(v: Any) -> Any:
    return v.isoformat() if hasattr(v, "isoformat") else v


def report_json(row: asyncpg.Record, principal: Principal, base: str,
                photo_rows: list | None = None) -> dict:
    """A report as JSON: public fields and the public location for everyone; the exact
    location, the reporter, the assignee and the photos' stripped metadata for staff."""
    staff = sees_private(principal)
    out: dict[str, Any] = {
        "ref": row["ref"], "category": row["category"], "description": row["description"],
        "status": row["status"], "priority": row["priority"], "channel": row["channel"],
        "ward_code": row["ward_code"], "ward_name": row["ward_name"],
        "address": (row["address"] if staff or row["category"] not in SENSITIVE_CATEGORIES
                    else None),
        "lon": row["lon"] if staff else row["public_lon"],
        "lat": row["lat"] if staff else row["public_lat"],
        "created_at": _iso(row["created_at"]), "updated_at": _iso(row["updated_at"]),
        "sla_due_at": _iso(row["sla_due_at"]), "resolved_at": _iso(row["resolved_at"]),
        "rating": row["rating"], "duplicate_of": row["duplicate_of_ref"],
        "overdue": bool(row["status"] in OPEN and row["sla_due_at"] is not None
                        and row["sla_due_at"] < dt.datetime.now(dt.UTC)),
    }
    if staff:
        out.update({k: row[k] for k in STAFF_FIELDS})
        out["attributes"] = json.loads(row["attributes"] or "{}")
    if photo_rows is not None:
        out["photos"] = [photo_json(p, base, staff) for p in photo_rows]
    return out


def photo_json(p: asyncpg.Record, base: str, staff: bool) -> dict:
    ext = photos.EXTENSIONS[p["content_type"]]
    out = {"id": p["id"], "content_type": p["content_type"], "width": p["width"],
           "height": p["height"],
           **{f"{size}_url": f"{base}/incidents/photos/{p['id']}/{size}.{ext}"
              for size in photos.SIZES}}
    if staff:
        out["stripped_metadata"] = json.loads(p["meta"] or "{}")
    return out


class ReportIn(BaseModel):
    """A new report (citizen app, web, or an operator on the hotline)."""

    model_config = ConfigDict(extra="forbid")
    category: str = Field(description=f"one of {', '.join(CATEGORIES)}")
    description: str | None = Field(default=None, max_length=4000)
    lon: float | None = None
    lat: float | None = None
    address: str | None = Field(default=None, max_length=500,
                                description="free text; geocoded when lon/lat are missing")
    priority: Literal["normal", "urgent"] = "normal"
    channel: Literal["app", "hotline", "web"] | None = None
    reporter_name: str | None = Field(default=None, max_length=200)
    reporter_phone: str | None = Field(default=None, max_length=40)
    reporter_email: str | None = Field(default=None, max_length=200)


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["assigned", "in_progress", "resolved", "rejected", "reopened"]
    note: str | None = Field(default=None, max_length=2000)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=2000)


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee: str = Field(min_length=1, max_length=120)
    note: str | None = Field(default=None, max_length=2000)


class CorrectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lon: float | None = None
    lat: float | None = None
    category: str | None = None
    priority: Literal["normal", "urgent"] | None = None
    note: str | None = Field(default=None, max_length=2000)


class DuplicateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    master: str = Field(min_length=1, max_length=40, description="ref of the master report")
    note: str | None = Field(default=None, max_length=2000)


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=100)
    rating: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=1000)


def media_storage(settings: Settings) -> photos.MediaStorage:
    """Where report photos are kept: ``var_dir/media`` (swap for object storage here)."""
    return photos.LocalStorage(settings.var_dir / "media")


def _csv(value: str | None) -> frozenset[str] | None:
    return frozenset(x.strip() for x in value.split(",") if x.strip()) if value else None


async def read_photos(request: Request, field_names: tuple[str, ...] = ("photo", "media")
                      ) -> tuple[list[photos.Photo], dict[str, str]]:
    """Photos of a multipart request (each checked and stripped) and its other form fields."""
    limit = photos.MAX_BYTES * photos.MAX_PHOTOS + 1024 * 1024
    if int(request.headers.get("content-length") or 0) > limit:
        raise PayloadTooLarge(f"at most {photos.MAX_PHOTOS} photos of "
                              f"{photos.MAX_BYTES // (1024 * 1024)} MB each")
    form = await request.form(max_files=photos.MAX_PHOTOS + 1, max_fields=100)
    out, fields = [], {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields[key] = value
        elif key in field_names:
            data = await value.read(photos.MAX_BYTES + 1)
            out.append(photos.process(data, value.content_type))
    if len(out) > photos.MAX_PHOTOS:
        raise PayloadTooLarge(f"at most {photos.MAX_PHOTOS} photos per report")
    return out, fields


@dataclass
class IncidentsRouter:
    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Incidents"]))
    storage_factory: Callable[[Settings], photos.MediaStorage] = media_storage

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:  # noqa: C901 (one route per function below)
        r = self.router
        storage_factory = self.storage_factory

        @r.post("/incidents", status_code=201, summary="File a report")
        async def create(body: ReportIn, request: Request, pool: PoolDep,
                         settings: SettingsDep, principal: PrincipalDep,
                         idempotency_key: Annotated[str | None, Header()] = None
                         ) -> JSONResponse:
            """File a citizen report (operators: on a caller's behalf, channel hotline). The
            answer carries the report's token, needed to rate it; retries with the same
            Idempotency-Key return the first report."""
            staff = principal.role in WORKERS
            channel = body.channel or ("hotline" if staff else
                                       "app" if principal.authenticated else "web")
            if not staff and (channel == "hotline" or body.priority == "urgent"):
                raise Forbidden("only staff file hotline reports or set urgent priority")
            report = NewReport(category=body.category, description=body.description,
                               lon=body.lon, lat=body.lat, address=body.address,
                               priority=body.priority, channel=channel,
                               reporter_name=body.reporter_name,
                               reporter_phone=body.reporter_phone,
                               reporter_email=body.reporter_email)
            row, created = await create_report(pool, report, actor_of(principal, channel),
                                               idempotency_key)
            out = report_json(row, principal, base_url(request, settings), [])
            out["token"] = row["token"]
            out["duplicate_candidates"] = await duplicate_candidates(
                pool, row["category"], row["lon"], row["lat"], row["created_at"], row["id"])
            return JSONResponse(out, status_code=201 if created else 200)

        @r.get("/incidents", summary="Reports (staff)")
        async def list_reports(
                request: Request, pool: PoolDep, settings: SettingsDep, principal: PrincipalDep,
                ward: str | None = None, status: str | None = None,
                category: str | None = None, overdue: bool = False,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> dict:
            """Reports for staff, newest first; inspectors see only their wards."""
            principal.require(*WORKERS)
            wards = _csv(ward)
            if principal.role == "inspector":
                for w in wards or ():
                    principal.require_ward(w)
                wards = wards or principal.wards
            rows = await pool.fetch(
                f"{REPORT_SELECT} WHERE ($1::text[] IS NULL OR i.ward_code = ANY($1)) "
                "AND ($2::text[] IS NULL OR i.status = ANY($2)) "
                "AND ($3::text[] IS NULL OR i.category = ANY($3)) "
                "AND (NOT $4 OR (i.status IN ('received', 'assigned', 'in_progress', "
                "'reopened') AND i.sla_due_at < now())) "
                "ORDER BY i.created_at DESC, i.id DESC LIMIT $5 OFFSET $6",
                sorted(wards) if wards is not None else None,
                sorted(_csv(status)) if status else None,
                sorted(_csv(category)) if category else None, overdue, limit, offset)
            base = base_url(request, settings)
            items = [report_json(x, principal, base) for x in rows]
            return {"items": items, "limit": limit, "offset": offset}

        @r.get("/incidents/overdue", summary="Overdue reports per ward (staff)")
        async def overdue(pool: PoolDep, principal: PrincipalDep,
                          ward: str | None = None) -> dict:
            """Open reports past their due date, by ward; inspectors see only their wards."""
            principal.require(*WORKERS)
            if ward is not None:
                principal.require_ward(ward)
            wards = [ward] if ward else (sorted(principal.wards)
                                         if principal.role == "inspector" else [None])
            out: dict[str, list] = {}
            for w in wards:
                for x in await workflow.overdue(pool, w):
                    out.setdefault(x["ward_code"], []).append(
                        {"ref": x["ref"], "category": x["category"], "status": x["status"],
                         "priority": x["priority"], "assignee": x["assignee"],
                         "created_at": _iso(x["created_at"]),
                         "sla_due_at": _iso(x["sla_due_at"])})
            return {"wards": out, "count": sum(len(v) for v in out.values())}

        @r.get("/incidents/events", summary="Live feed of report changes (Server-Sent Events)")
        async def events(request: Request, pool: PoolDep, settings: SettingsDep,
                         principal: PrincipalDep, ward: str | None = None,
                         category: str | None = None,
                         last_event_id: Annotated[str | None, Header()] = None,
                         limit: Annotated[int | None, Query(ge=1, le=100_000)] = None
                         ) -> StreamingResponse:
            """Every change to a report as an SSE event (id = event id), filtered by ward and
            category (comma-separated); resume with Last-Event-ID. Inspectors see only their
            wards. ``limit`` closes the stream after that many events (for scripts)."""
            wards = _csv(ward)
            if principal.role == "inspector":
                for w in wards or ():
                    principal.require_ward(w)
                wards = wards or principal.wards
            cats = _csv(category)
            if cats and not cats <= set(CATEGORIES):
                raise InvalidParameter(f"category: one of {', '.join(CATEGORIES)}")
            after = None
            if last_event_id is not None:
                if not last_event_id.strip().isdigit():
                    raise InvalidParameter("Last-Event-ID: an event id (integer)")
                after = int(last_event_id)
            flt = feed.FeedFilter(wards, cats)
            staff = sees_private(principal)
            return StreamingResponse(
                _sse(request, pool, settings.dsn, flt, after, staff, limit),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

        @r.get("/incidents/photos/{photo_id}/{name}", summary="A report photo",
               response_class=Response)
        async def photo_file(photo_id: str, name: str, pool: PoolDep,
                             settings: SettingsDep) -> Response:
            """A photo (metadata stripped) in size large, medium or thumb: ``thumb.jpg``."""
            size, _, ext = name.partition(".")
            if size not in photos.SIZES or len(photo_id) != 32:
                raise InvalidParameter("photo: /incidents/photos/{id}/{large|medium|thumb}.ext")
            row = await photos.photo(pool, photo_id)
            data = storage_factory(settings).get(
                photos.photo_key(photo_id, size, photos.EXTENSIONS[row["content_type"]]))
            return Response(data, media_type=row["content_type"],
                            headers={"Cache-Control": "public, max-age=86400"})

        @r.get("/incidents/{ref}", summary="One report")
        async def get_report(ref: str, request: Request, pool: PoolDep, settings: SettingsDep,
                             principal: PrincipalDep) -> dict:
            """A report: public fields for everyone, the reporter and exact place for staff
            (inspectors: in their wards)."""
            row = await fetch_report(pool, ref)
            if principal.role == "inspector":
                principal.require_ward(row["ward_code"])
            return report_json(row, principal, base_url(request, settings),
                               await photos.photos_of(pool, row["id"]))

        @r.get("/incidents/{ref}/events", summary="History of a report (staff)")
        async def history(ref: str, pool: PoolDep, principal: PrincipalDep) -> dict:
            """Every change to the report, oldest first: actor, time, status before/after."""
            principal.require(*WORKERS)
            row = await fetch_report(pool, ref)
            principal.require_ward(row["ward_code"])
            return {"ref": row["ref"], "events": [
                {"id": e["id"], "at": _iso(e["at"]), "actor": e["actor"], "kind": e["kind"],
                 "from_status": e["from_status"], "to_status": e["to_status"],
                 "note": e["note"], "data": json.loads(e["data"])}
                for e in await workflow.history(pool, row["id"])]}

        @r.get("/incidents/{ref}/duplicates", summary="Possible duplicates (staff)")
        async def duplicates(ref: str, pool: PoolDep, principal: PrincipalDep) -> dict:
            """Earlier reports of the same category within 250 m and 14 days."""
            principal.require(*WORKERS)
            row = await fetch_report(pool, ref)
            principal.require_ward(row["ward_code"])
            return {"ref": row["ref"], "candidates": await duplicate_candidates(
                pool, row["category"], row["lon"], row["lat"], row["created_at"], row["id"],
                limit=20)}

        async def _staff_change(request: Request, settings: Settings, principal: Principal,
                                run) -> dict:
            principal.require(*WORKERS)
            row = await run(actor_of(principal))
            return report_json(row, principal, base_url(request, settings))

        @r.post("/incidents/{ref}/status", summary="Change the status (staff)")
        async def set_status(ref: str, body: StatusIn, request: Request, pool: PoolDep,
                             settings: SettingsDep, principal: PrincipalDep) -> dict:
            """Move the report along its workflow; an illegal change is a 409."""
            return await _staff_change(request, settings, principal, lambda actor: (
                workflow.transition(pool, ref, body.status, actor, principal, body.note)))

        @r.post("/incidents/{ref}/notes", summary="Add a note (staff)")
        async def add_note(ref: str, body: NoteIn, request: Request, pool: PoolDep,
                           settings: SettingsDep, principal: PrincipalDep) -> dict:
            """Add a note to the report's history; nothing else changes."""
            return await _staff_change(request, settings, principal, lambda actor: (
                workflow.add_note(pool, ref, body.note, actor, principal)))

        @r.post("/incidents/{ref}/assign", summary="Assign (staff)")
        async def assign(ref: str, body: AssignIn, request: Request, pool: PoolDep,
                         settings: SettingsDep, principal: PrincipalDep) -> dict:
            """Assign to a ward unit (ward:CODE) or an inspector."""
            return await _staff_change(request, settings, principal, lambda actor: (
                workflow.assign(pool, ref, body.assignee, actor, principal, body.note)))

        @r.patch("/incidents/{ref}", summary="Correct place, category or priority (staff)")
        async def correct(ref: str, body: CorrectIn, request: Request, pool: PoolDep,
                          settings: SettingsDep, principal: PrincipalDep) -> dict:
            """Move or recategorize a report: it is re-routed and its due date recomputed."""
            return await _staff_change(request, settings, principal, lambda actor: (
                workflow.correct(pool, ref, actor, principal, body.lon, body.lat,
                                 body.category, body.priority, body.note)))

        @r.post("/incidents/{ref}/duplicate", summary="Merge into a master report (staff)")
        async def duplicate(ref: str, body: DuplicateIn, request: Request, pool: PoolDep,
                            settings: SettingsDep, principal: PrincipalDep) -> dict:
            """Link the report as a duplicate of ``master``."""
            return await _staff_change(request, settings, principal, lambda actor: (
                workflow.mark_duplicate(pool, ref, body.master, actor, principal, body.note)))

        @r.post("/incidents/{ref}/rating", summary="Rate a resolved report (reporter)")
        async def rating(ref: str, body: RatingIn, request: Request, pool: PoolDep,
                         settings: SettingsDep, principal: PrincipalDep) -> dict:
            """The reporter's satisfaction, 1 to 5, with the report's token; 1 or 2 reopens."""
            row = await workflow.rate(pool, ref, body.token, body.rating, body.comment)
            return report_json(row, principal, base_url(request, settings))

        @r.post("/incidents/{ref}/photos", status_code=201, summary="Add photos")
        async def add_photos(ref: str, request: Request, pool: PoolDep, settings: SettingsDep,
                             principal: PrincipalDep) -> dict:
            """Attach photos (multipart field ``photo``, JPEG/PNG/WebP, at most 5 of 10 MB):
            by staff, or by the reporter with the report's ``token`` form field."""
            row = await fetch_report(pool, ref)
            new, fields = await read_photos(request)
            if principal.role in WORKERS:
                principal.require_ward(row["ward_code"])
            elif fields.get("token") != row["token"]:
                raise Forbidden("staff, or the reporter with the report's token, add photos")
            if not new:
                raise InvalidParameter("photo: attach at least one image")
            await photos.add_photos(pool, storage_factory(settings), row, new,
                                    actor_of(principal))
            base = base_url(request, settings)
            return {"ref": row["ref"], "photos": [
                photo_json(p, base, sees_private(principal))
                for p in await photos.photos_of(pool, row["id"])]}


async def _sse(request: Request, pool: asyncpg.Pool, dsn: str, flt: feed.FeedFilter,
               after: int | None, staff: bool, limit: int | None) -> AsyncIterator[bytes]:
    """The SSE stream: LISTEN first, then the backlog after ``after``, then live events
    (each sent once, also when commits arrive out of id order)."""
    sent = 0
    seen: set[int] = set()
    order: collections.deque[int] = collections.deque()
    async with feed.listen(dsn) as queue:
        yield b"retry: 2000\n\n"  # the client knows it is listening from here on
        rows = await feed.events_after(pool, after, flt) if after is not None else []
        while True:
            for row in rows:
                if row["id"] in seen:
                    continue
                seen.add(row["id"])
                order.append(row["id"])
                if len(order) > 10_000:
                    seen.discard(order.popleft())
                data = json.dumps(feed.public_event(row, staff), ensure_ascii=False)
                yield f"id: {row['id']}\nevent: {row['kind']}\ndata: {data}\n\n".encode()
                sent += 1
                if limit is not None and sent >= limit:
                    return
            try:
                first = await asyncio.wait_for(queue.get(), timeout=15)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield b": keep-alive\n\n"
                rows = []
                continue
            batch = [first]
            with contextlib.suppress(asyncio.QueueEmpty):
                while len(batch) < 500:
                    batch.append(queue.get_nowait())
            ids = [p["id"] for p in batch if flt.matches(p) and p["id"] not in seen]
            rows = await feed.events_by_id(pool, ids, flt) if ids else []
