"""Application assembly: ``create_app(settings)`` builds the whole HTTP service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.features import FeaturesRouter
from api.landing import LandingRouter
from api.tiles import TilesRouter
from gis.db import create_pool
from gis.settings import Settings


def lifespan(settings: Settings):
    @asynccontextmanager
    async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.pool = await create_pool(settings)
        try:
            yield
        finally:
            await app.state.pool.close()

    return _lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the Huế GIS API for ``settings`` (default: from ``HUEGIS_*`` variables)."""
    settings = settings or Settings()
    app = FastAPI(title="Huế GIS", version="0.1.0", lifespan=lifespan(settings),
                  description="Spatial services of the Huế Intelligent Operations Center.")
    app.state.settings = settings
    errors.install(app)
    for part in (LandingRouter(), FeaturesRouter(), TilesRouter()):
        app.include_router(part.router)
    return app
