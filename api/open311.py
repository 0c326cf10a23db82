"""Open311 GeoReport v2 at /open311/v2/: services and citizen requests.

JSON or XML by the path's extension; errors in the specification's shape
(``[{"code": 400, "description": …}]`` or ``<errors><error>…``). Extensions (documented in
docs/incidents.md): ``x_status`` (the workflow status behind open/closed), ``notes`` (the
public history), ``page``/``page_size`` on GET requests, ``Idempotency-Key`` and multipart
``media`` photos on POST.
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
from fastapi import APIRouter, Request, Response

from api.deps import base_url
from api.incidents import actor_of, media_storage, read_photos
from gis.auth import PUBLIC, Principal
from gis.auth.resolve import principal_for_key
from gis.errors import Forbidden, HueGISError, InvalidParameter, NotFound, Unauthorized
from gis.incidents import CATEGORIES, PROCESSED, STATUSES, photos
from gis.incidents.intake import REPORT_SELECT, NewReport, create_report, fetch_report
from gis.settings import Settings
from gis.workdays import SLA_URGENT_HOURS, SLA_WORKING_DAYS
from layers.incidents import INCIDENT_CATEGORIES, SENSITIVE_CATEGORIES

PREFIX = "/open311/v2"
MAX_WINDOW = dt.timedelta(days=90)
DEFAULT_PAGE_SIZE = 1000
FORMATS = {"json": "application/json", "xml": "text/xml; charset=utf-8"}
# Attributes every service asks (attribute[code] on POST); ``danger=yes`` files it urgent.
ATTRIBUTES = {
    "danger": {"datatype": "singlevaluelist", "required": False, "order": 1,
               "description": "Is anyone in immediate danger? (Có nguy hiểm trước mắt?)",
               "datatype_description": "yes or no; yes files the report as urgent",
               "values": [{"key": "yes", "name": "Yes / Có"}, {"key": "no", "name": "No / Không"}]},
    "landmark": {"datatype": "string", "required": False, "order": 2,
                 "description": "A landmark near the problem (Địa điểm gần đó)",
                 "datatype_description": "free text, at most 200 characters"},
}
EXTRA_ATTRIBUTES = {
    "drainage": {"depth_cm": {"datatype": "number", "required": False, "order": 3,
                              "description": "Water depth in centimetres (Độ sâu ngập, cm)",
                              "datatype_description": "a number from 0 to 500"}},
}
# XML element of each list member, by the list's key.
XML_ITEMS = {"services": "service", "service_requests": "request", "attributes": "attribute",
             "values": "value", "endpoints": "endpoint", "formats": "format", "notes": "note",
             "errors": "error", "keywords": "keyword"}


def _xml_fill(parent: ET.Element, value: Any, tag: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, list):
                holder = ET.SubElement(parent, k)
                for item in v:
                    _xml_fill(ET.SubElement(holder, XML_ITEMS.get(k, "item")), item, k)
            else:
                _xml_fill(ET.SubElement(parent, k), v, k)
    elif value is None:
        return
    elif isinstance(value, bool):
        parent.text = "true" if value else "false"
    else:
        parent.text = str(value)


def to_xml(root: str, value: Any) -> bytes:
    """GeoReport XML: a list becomes ``<root><item>…`` with the item name of the root.

    >>> to_xml("errors", [{"code": 400, "description": "bad"}]).decode()[-78:]
    '<errors><error><code>400</code><description>bad</description></error></errors>'
    """
    top = ET.Element(root)
    if isinstance(value, list):
        for item in value:
            _xml_fill(ET.SubElement(top, XML_ITEMS.get(root, "item")), item, root)
    else:
        _xml_fill(top, value, root)
    return ET.tostring(top, encoding="utf-8", xml_declaration=True)


def render(fmt: str, root: str, value: Any, status: int = 200) -> Response:
    if fmt == "xml":
        return Response(to_xml(root, value), status_code=status, media_type=FORMATS["xml"])
    return Response(json.dumps(value, ensure_ascii=False), status_code=status,
                    media_type=FORMATS["json"])


def error(fmt: str, status: int, description: str) -> Response:
    return render(fmt if fmt in FORMATS else "json", "errors",
                  [{"code": status, "description": description}], status)


def _fmt(fmt: str) -> str:
    if fmt not in FORMATS:
        raise NotFound("format: .json or .xml")
    return fmt


def _datetime(name: str, text: str | None) -> dt.datetime | None:
    if text is None or not text.strip():
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip().replace(" ", "+"))
    except ValueError:
        raise InvalidParameter(f"{name}: not a W3C date-time (2026-11-29T10:00:00+07:00)"
                               ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _list(text: str | None) -> list[str] | None:
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


def _iso(v: dt.datetime | None) -> str | None:
    return v.isoformat(timespec="seconds") if v else None


def service(code: str) -> dict:
    en, vi = INCIDENT_CATEGORIES[code]
    return {"service_code": code, "service_name": en, "description": f"{en} ({vi})",
            "metadata": True, "type": "realtime", "keywords": vi, "group": "Huế city services"}


def request_json(row: asyncpg.Record, notes: list[dict], base: str,
                 photo: asyncpg.Record | None) -> dict:
    """A report as a GeoReport service request (no reporter data; public-order locations
    rounded as in the public view)."""
    attributes = json.loads(row["attributes"] or "{}")
    media = attributes.get("media_url")
    if photo is not None:
        ext = photos.EXTENSIONS[photo["content_type"]]
        media = f"{base}/incidents/photos/{photo['id']}/medium.{ext}"
    closed = row["status"] in PROCESSED
    last = next((n["description"] for n in reversed(notes) if n.get("description")), None)
    return {
        "service_request_id": row["ref"], "status": "closed" if closed else "open",
        "x_status": row["status"], "status_notes": last,
        "service_name": INCIDENT_CATEGORIES[row["category"]][0],
        "service_code": row["category"], "description": row["description"],
        "agency_responsible": f"{row['ward_name']} ({row['ward_code']})",
        "service_notice": None, "requested_datetime": _iso(row["created_at"]),
        "updated_datetime": _iso(row["updated_at"]),
        "expected_datetime": _iso(row["sla_due_at"]),
        "address": None if row["category"] in SENSITIVE_CATEGORIES else row["address"],
        "address_id": None, "zipcode": None,
        "lat": row["public_lat"], "long": row["public_lon"], "media_url": media,
        "priority": row["priority"], "notes": notes,
    }


async def _notes(pool: asyncpg.Pool, ids: list[int]) -> dict[int, list[dict]]:
    rows = await pool.fetch(
        "SELECT incident_id, at, kind, to_status, note FROM incident_events "
        "WHERE incident_id = ANY($1::bigint[]) AND (to_status IS NOT NULL OR kind = 'rated') "
        "ORDER BY incident_id, at, id", ids)
    out: dict[int, list[dict]] = {}
    for r in rows:
        out.setdefault(r["incident_id"], []).append(
            {"datetime": _iso(r["at"]), "type": r["kind"], "status": r["to_status"],
             "description": r["note"]})
    return out


async def _first_photos(pool: asyncpg.Pool, ids: list[int]) -> dict[int, asyncpg.Record]:
    rows = await pool.fetch("SELECT DISTINCT ON (incident_id) incident_id, id, content_type "
                            "FROM incident_photos WHERE incident_id = ANY($1::bigint[]) "
                            "ORDER BY incident_id, created_at, id", ids)
    return {r["incident_id"]: r for r in rows}


async def _requests(pool: asyncpg.Pool, rows: list[asyncpg.Record], base: str) -> list[dict]:
    ids = [r["id"] for r in rows]
    notes = await _notes(pool, ids)
    first = await _first_photos(pool, ids)
    return [request_json(r, notes.get(r["id"], []), base, first.get(r["id"])) for r in rows]


def _attributes(form: dict[str, str], code: str) -> dict[str, Any]:
    allowed = {**ATTRIBUTES, **EXTRA_ATTRIBUTES.get(code, {})}
    out: dict[str, Any] = {}
    for key, value in form.items():
        if not (key.startswith("attribute[") and key.endswith("]")):
            continue
        name = key[len("attribute["):-1]
        spec = allowed.get(name)
        if spec is None:
            raise InvalidParameter(f"attribute[{name}]: not an attribute of {code}")
        if spec["datatype"] == "singlevaluelist":
            if value not in [v["key"] for v in spec["values"]]:
                raise InvalidParameter(f"attribute[{name}]: one of "
                                       f"{', '.join(v['key'] for v in spec['values'])}")
            out[name] = value
        elif spec["datatype"] == "number":
            try:
                number = float(value)
            except ValueError:
                raise InvalidParameter(f"attribute[{name}]: a number") from None
            if not 0 <= number <= 500:
                raise InvalidParameter(f"attribute[{name}]: from 0 to 500")
            out[name] = number
        else:
            if len(value) > 200:
                raise InvalidParameter(f"attribute[{name}]: at most 200 characters")
            out[name] = value
    return out


def _float(name: str, text: str | None) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        raise InvalidParameter(f"{name}: a decimal number of degrees") from None


@dataclass
class Open311Router:
    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Open311"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        r = self.router

        def guarded(handler: Callable[..., Awaitable[Response]]):
            async def run(request: Request, fmt: str, *args: Any) -> Response:
                try:
                    return await handler(request, _fmt(fmt), *args)
                except HueGISError as exc:
                    status = exc.status if exc.status in (400, 403, 404, 409, 413, 415) else (
                        403 if isinstance(exc, Unauthorized) else exc.status)
                    return error(fmt, status, exc.description)
            return run

        async def pool_of(request: Request) -> asyncpg.Pool:
            return await request.app.state.pools.get()

        def settings_of(request: Request) -> Settings:
            return request.app.state.settings

        @guarded
        async def _discovery(request: Request, fmt: str) -> Response:
            base = base_url(request, settings_of(request))
            return render(fmt, "discovery", {
                "changeset": "2026-11-29T00:00:00+07:00", "contact":
                "Huế Intelligent Operations Center, hotline 1900 1075",
                "key_service": "API keys from the operations center (X-API-Key or api_key)",
                "endpoints": [{"specification": "http://wiki.open311.org/GeoReport_v2",
                               "url": f"{base}{PREFIX}", "changeset": "2026-11-29T00:00:00+07:00",
                               "type": "production",
                               "formats": ["text/xml", "application/json"]}]})

        @r.get(PREFIX + "/discovery.{fmt}", summary="Open311 service discovery")
        async def discovery(request: Request, fmt: str) -> Response:
            """Where the GeoReport v2 endpoint is and which formats it speaks."""
            return await _discovery(request, fmt)

        @guarded
        async def _services(request: Request, fmt: str) -> Response:
            return render(fmt, "services", [service(c) for c in CATEGORIES])

        @r.get(PREFIX + "/services.{fmt}", summary="Open311 service list")
        async def services(request: Request, fmt: str) -> Response:
            """The report categories (service codes) citizens can file."""
            return await _services(request, fmt)

        @guarded
        async def _definition(request: Request, fmt: str, code: str) -> Response:
            if code not in CATEGORIES:
                raise NotFound(f"service_code {code!r} not found")
            attrs = {**ATTRIBUTES, **EXTRA_ATTRIBUTES.get(code, {})}
            return render(fmt, "service_definition", {"service_code": code, "attributes": [
                {"variable": True, "code": k, **{x: y for x, y in v.items()}}
                for k, v in attrs.items()]})

        @r.get(PREFIX + "/services/{code}.{fmt}", summary="Open311 service definition")
        async def definition(request: Request, code: str, fmt: str) -> Response:
            """The extra attributes a service asks for, with datatypes and values."""
            return await _definition(request, fmt, code)

        @guarded
        async def _post(request: Request, fmt: str) -> Response:
            pool = await pool_of(request)
            ctype = request.headers.get("content-type", "")
            if ctype.startswith("multipart/"):
                new_photos, form = await read_photos(request, ("media",))
            else:  # form-encoded: parsed directly (starlette's form parser costs more)
                new_photos = []
                try:
                    form = dict(parse_qsl((await request.body()).decode(),
                                          keep_blank_values=True))
                except UnicodeDecodeError:
                    raise InvalidParameter("the form is not UTF-8") from None
            principal: Principal = PUBLIC
            key = form.get("api_key") or request.headers.get("x-api-key")
            if key:
                try:
                    principal = await principal_for_key(pool, key)
                except Unauthorized:
                    raise Forbidden("api_key is not valid") from None
            code = form.get("service_code")
            if not code:
                raise InvalidParameter("service_code: required")
            if code not in CATEGORIES:
                raise InvalidParameter(f"service_code: unknown {code!r}")
            attributes = _attributes(form, code)
            if form.get("media_url"):
                if not form["media_url"].startswith(("http://", "https://")) or len(
                        form["media_url"]) > 1000:
                    raise InvalidParameter("media_url: an http(s) URL")
                attributes["media_url"] = form["media_url"]
            name = " ".join(x for x in (form.get("first_name"), form.get("last_name")) if x)
            report = NewReport(
                category=code, description=form.get("description"),
                lon=_float("long", form.get("long")), lat=_float("lat", form.get("lat")),
                address=form.get("address_string"),
                priority="urgent" if attributes.get("danger") == "yes" else "normal",
                channel="open311", reporter_name=name or None,
                reporter_phone=form.get("phone") or None,
                reporter_email=form.get("email") or None,
                device_id=form.get("device_id") or None,
                account_id=form.get("account_id") or None, attributes=attributes)
            actor = (f"open311:{principal.name}" if principal.authenticated
                     else actor_of(principal, "open311"))
            row, created = await create_report(pool, report, actor,
                                               request.headers.get("idempotency-key"))
            if created and new_photos:
                storage = media_storage(settings_of(request))
                await photos.add_photos(pool, storage, row, new_photos, actor)
            due = row["sla_due_at"]
            limit = (f"urgent: {SLA_URGENT_HOURS[code]} h" if row["priority"] == "urgent"
                     else f"{SLA_WORKING_DAYS[code]} working days")
            notice = f"Routed to {row['ward_name']}; due by {_iso(due)} ({limit})"
            return render(fmt, "service_requests", [{
                "service_request_id": row["ref"], "token": row["token"],
                "service_notice": notice, "account_id": row["account_id"]}],
                201 if created else 200)

        @r.post(PREFIX + "/requests.{fmt}", summary="Open311: file a service request")
        async def post_request(request: Request, fmt: str) -> Response:
            """File a report (form-encoded as GeoReport v2 says, or multipart with ``media``
            photos); the answer carries the request id and the token for rating."""
            return await _post(request, fmt)

        @guarded
        async def _get_requests(request: Request, fmt: str) -> Response:
            q = request.query_params
            ids = _list(q.get("service_request_id"))
            codes = _list(q.get("service_code"))
            for c in codes or ():
                if c not in CATEGORIES:
                    raise InvalidParameter(f"service_code: unknown {c!r}")
            statuses = _list(q.get("status"))
            wanted: list[str] | None = None
            if statuses:
                wanted = []
                for s in statuses:
                    if s == "open":
                        wanted += [x for x in STATUSES if x not in PROCESSED]
                    elif s == "closed":
                        wanted += list(PROCESSED)
                    elif s in STATUSES:
                        wanted.append(s)
                    else:
                        raise InvalidParameter(f"status: open, closed or one of "
                                               f"{', '.join(STATUSES)}")
            start, end = _datetime("start_date", q.get("start_date")), _datetime(
                "end_date", q.get("end_date"))
            if start and end:
                if end < start:
                    raise InvalidParameter("end_date: before start_date")
                if end - start > MAX_WINDOW:
                    raise InvalidParameter("start_date and end_date: at most 90 days apart")
            elif start:
                end = start + MAX_WINDOW
            elif end:
                start = end - MAX_WINDOW
            elif not ids:
                end = dt.datetime.now(dt.UTC)
                start = end - MAX_WINDOW
            try:
                page = int(q.get("page") or 1)
                size = int(q.get("page_size") or DEFAULT_PAGE_SIZE)
            except ValueError:
                raise InvalidParameter("page and page_size: integers") from None
            if page < 1 or not 1 <= size <= DEFAULT_PAGE_SIZE:
                raise InvalidParameter(f"page ≥ 1, page_size 1 to {DEFAULT_PAGE_SIZE}")
            if ids and len(ids) > DEFAULT_PAGE_SIZE:
                raise InvalidParameter(f"service_request_id: at most {DEFAULT_PAGE_SIZE}")
            pool = await pool_of(request)
            rows = await pool.fetch(
                f"{REPORT_SELECT} WHERE ($1::text[] IS NULL OR i.ref = ANY($1)) "
                "AND ($2::text[] IS NULL OR i.category = ANY($2)) "
                "AND ($3::text[] IS NULL OR i.status = ANY($3)) "
                "AND ($4::timestamptz IS NULL OR i.created_at >= $4) "
                "AND ($5::timestamptz IS NULL OR i.created_at <= $5) "
                "ORDER BY i.created_at DESC, i.id DESC LIMIT $6 OFFSET $7",
                ids, codes, wanted, start, end, size, (page - 1) * size)
            base = base_url(request, settings_of(request))
            return render(fmt, "service_requests", await _requests(pool, rows, base))

        @r.get(PREFIX + "/requests.{fmt}", summary="Open311: service requests")
        async def get_requests(request: Request, fmt: str) -> Response:
            """Requests by id, service, status and date (at most 90 days; the last 90 by
            default), newest first, 1,000 a page (``page``, ``page_size`` extension)."""
            return await _get_requests(request, fmt)

        @guarded
        async def _get_one(request: Request, fmt: str, ref: str) -> Response:
            pool = await pool_of(request)
            row = await fetch_report(pool, ref) if not ref.isdigit() else None
            if row is None:
                raise NotFound(f"service request {ref!r} not found")
            base = base_url(request, settings_of(request))
            return render(fmt, "service_requests", await _requests(pool, [row], base))

        @r.get(PREFIX + "/requests/{ref}.{fmt}", summary="Open311: one service request")
        async def get_request(request: Request, ref: str, fmt: str) -> Response:
            """One request, with its public history (``notes``)."""
            return await _get_one(request, fmt, ref)

        @guarded
        async def _token(request: Request, fmt: str, token: str) -> Response:
            pool = await pool_of(request)
            ref = await pool.fetchval("SELECT ref FROM incidents WHERE token = $1", token)
            if ref is None:
                raise NotFound("token not found")
            return render(fmt, "service_requests", [{"service_request_id": ref,
                                                     "token": token}])

        @r.get(PREFIX + "/tokens/{token}.{fmt}", summary="Open311: request id from a token")
        async def token(request: Request, token: str, fmt: str) -> Response:
            """The service request id of a token returned by POST requests."""
            return await _token(request, fmt, token)
