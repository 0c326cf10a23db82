"""Landing page and health check."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import SettingsDep, base_url
from layers import ATTRIBUTION


@dataclass
class LandingRouter:
    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Service"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        r = self.router

        @r.get("/", summary="Landing page")
        async def landing(request: Request, settings: SettingsDep) -> dict:
            """What this service is, the data attribution, and links to everything it serves."""
            base = base_url(request, settings)
            return {
                "title": "Huế GIS",
                "description": "Spatial services of the Huế Intelligent Operations Center: "
                               "thematic layers, features and vector tiles of Huế City.",
                "attribution": ATTRIBUTION,
                "links": [
                    {"href": f"{base}/", "rel": "self", "type": "application/json",
                     "title": "This document"},
                    {"href": f"{base}/openapi.json", "rel": "service-desc",
                     "type": "application/vnd.oai.openapi+json;version=3.0",
                     "title": "The API definition"},
                    {"href": f"{base}/docs", "rel": "service-doc", "type": "text/html",
                     "title": "The API documentation"},
                    {"href": f"{base}/collections", "rel": "data",
                     "type": "application/json", "title": "Collections"},
                    {"href": f"{base}/health", "rel": "status", "type": "application/json",
                     "title": "Health check"},
                ],
            }

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
