"""Landing page, ``/conformance``, the OpenAPI document at ``/api``, and the health check.

Also the two helpers every OGC resource uses: :func:`negotiate` (``f=`` or ``Accept``) and
:func:`html_page` (Jinja2 templates in ``api/templates/features/``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.deps import SettingsDep, base_url
from gis.conformance import conformance_classes
from gis.errors import InvalidParameter
from layers import ATTRIBUTION

TEMPLATES = Path(__file__).parent / "templates" / "features"
OPENAPI_TYPE = "application/vnd.oai.openapi+json;version=3.0"
MEDIA = {"json": "application/json", "html": "text/html", "geojson": "application/geo+json",
         "csv": "text/csv", "gpkg": "application/geopackage+sqlite3"}
FormatQuery = Annotated[str | None, Query(description="Output format: json or html "
                                          "(items also csv, gpkg); default from Accept")]


ITEMS_PATH = "/collections/{collection_id}/items"


def openapi_document(app) -> dict:
    """FastAPI's OpenAPI document plus one items path per feature collection
    (``/collections/parcels/items``…), listing the collection's public fields as query
    parameters (equality filters, ``?land_use=ODT``). Clients read a collection's own
    parameters there: QGIS's OAPIF provider then sends a layer filter on those fields to the
    server (as query parameters) instead of downloading the whole collection to filter it
    itself. Built once per app."""
    doc = getattr(app.state, "openapi_document", None)
    if doc is not None:
        return doc
    from api.features import JSON_TYPES  # the catalog's types as JSON Schema
    from layers import VECTOR_LAYERS

    doc = dict(app.openapi())
    paths = dict(doc["paths"])
    generic = paths.get(ITEMS_PATH, {}).get("get")
    if generic is not None:
        common = [p for p in generic.get("parameters", []) if p.get("in") != "path"]
        for layer in VECTOR_LAYERS.values():
            fields = [{"name": f.name, "in": "query", "required": False, "style": "form",
                       "explode": False, "schema": dict(JSON_TYPES[f.type]),
                       "description": f"Features whose {f.title_in('en')} equals this value"}
                      for f in layer.public_fields]
            taken = {p["name"] for p in common}
            paths[f"/collections/{layer.id}/items"] = {"get": {
                **{k: v for k, v in generic.items() if k not in ("parameters", "operationId")},
                "summary": f"{layer.title}: features",
                "operationId": f"getItems_{layer.id}",
                "parameters": common + [p for p in fields if p["name"] not in taken]}}
    doc["paths"] = paths
    app.state.openapi_document = doc
    return doc


def negotiate(request: Request, f: str | None, allowed: tuple[str, ...] = ("json", "html")
              ) -> str:
    """The response format: ``f`` when given (400 if not offered), else from ``Accept``
    (JSON unless the client prefers one of the other offered formats)."""
    if f is not None:
        fmt = {"geojson": "json", "application/geo+json": "json", "application/json": "json",
               "text/html": "html", "text/csv": "csv"}.get(f.lower(), f.lower())
        if fmt not in allowed:
            raise InvalidParameter(f"f must be one of {', '.join(allowed)}, got {f!r}")
        return fmt
    best, best_q = "json", -1.0
    for part in request.headers.get("accept", "").split(","):
        media, *opts = [p.strip() for p in part.split(";")]
        q = 1.0
        for o in opts:
            if o.startswith("q="):
                try:
                    q = float(o[2:])
                except ValueError:
                    q = 0.0
        for fmt in allowed:
            offered = (MEDIA[fmt], "application/geo+json") if fmt == "json" else (MEDIA[fmt],)
            if media and media in offered and q > best_q:
                best, best_q = fmt, q
    return best


@cache
def _env() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(),
                       trim_blocks=True, lstrip_blocks=True)


def html_page(template: str, request: Request, settings, status: int = 200,
              **context: object) -> HTMLResponse:
    """Render one of the pages in ``api/templates/features/``."""
    base = base_url(request, settings)
    text = _env().get_template(template).render(base=base, attribution=ATTRIBUTION,
                                                request=request, **context)
    return HTMLResponse(text, status_code=status)


def landing_doc(base: str) -> dict:
    """The landing page: what this is, the attribution and links to everything."""
    def link(path: str, rel: str, typ: str, title: str) -> dict:
        return {"href": f"{base}{path}", "rel": rel, "type": typ, "title": title}

    return {
        "title": "Huế GIS",
        "description": "Spatial services of the Huế Intelligent Operations Center: "
                       "thematic layers, features and vector tiles of Huế City.",
        "attribution": ATTRIBUTION,
        "links": [
            link("/", "self", "application/json", "This document"),
            link("/?f=html", "alternate", "text/html", "This document as HTML"),
            link("/api", "service-desc", OPENAPI_TYPE, "The API definition (OpenAPI 3)"),
            link("/docs", "service-doc", "text/html", "The API documentation"),
            link("/conformance", "conformance", "application/json",
                 "OGC conformance classes implemented"),
            link("/collections", "data", "application/json", "Collections"),
            link("/health", "status", "application/json", "Health check"),
        ],
    }


@dataclass
class LandingRouter:
    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Service"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        r = self.router

        @r.get("/", summary="Landing page")
        async def landing(request: Request, settings: SettingsDep, f: FormatQuery = None
                          ) -> Response:
            """What this service is, the data attribution, and links to everything it serves."""
            doc = landing_doc(base_url(request, settings))
            if negotiate(request, f) == "html":
                return html_page("landing.html", request, settings, doc=doc)
            return JSONResponse(doc)

        @r.get("/conformance", summary="OGC conformance classes")
        async def conformance(request: Request, settings: SettingsDep, f: FormatQuery = None
                              ) -> Response:
            """The OGC API conformance classes this service implements."""
            doc = {"conformsTo": conformance_classes()}
            if negotiate(request, f) == "html":
                return html_page("conformance.html", request, settings, doc=doc)
            return JSONResponse(doc)

        @r.get("/api", summary="The API definition (OpenAPI 3)")
        async def api_definition(request: Request, settings: SettingsDep,
                                 f: FormatQuery = None) -> Response:
            """This API's OpenAPI 3 document (HTML: the interactive documentation)."""
            if negotiate(request, f) == "html":
                return RedirectResponse(f"{base_url(request, settings)}/docs", status_code=303)
            return JSONResponse(openapi_document(request.app), media_type=OPENAPI_TYPE)

        @r.get("/health", summary="Health check")
        async def health(request: Request) -> JSONResponse:
            """Whether the service and its database are up (503 when the database is not)."""
            try:
                pool = await request.app.state.pools.get()
                row = await pool.fetchrow(
                    "SELECT postgis_lib_version() AS postgis, "
                    "(SELECT version_num FROM alembic_version) AS schema")
            except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
                return JSONResponse({"status": "unavailable", "database": "down",
                                     "description": type(exc).__name__}, status_code=503)
            return JSONResponse({"status": "ok", "database": "up",
                                 "postgis": row["postgis"], "schema_revision": row["schema"]})
