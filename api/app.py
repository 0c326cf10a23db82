"""Application assembly: ``create_app(settings)`` builds the whole HTTP service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI

from api import errors
from api.auth import AuthRouter
from api.features import FeaturesRouter, ItemsFastPath
from api.gazetteer import GazetteerRouter
from api.incidents import IncidentsRouter
from api.landing import LandingRouter
from api.maps import MapsRouter
from api.open311 import Open311Router
from api.queries import QueriesRouter
from api.stats import StatsRouter
from api.styles import StylesRouter
from api.tiles import TileFastPath, TilesRouter
from api.transactions import TransactionsRouter
from api.web import WebRouter
from api.wms import WMSRouter
from gis.db import create_pool
from gis.errors import DatabaseUnavailable
from gis.settings import Settings

log = logging.getLogger("huegis.api")
POOL_CLOSE_S = 10.0  # graceful pool close at shutdown, then terminate


class PoolHolder:
    """The connection pool, created at start-up or, if the database is down then, on the
    first request after it comes back (the service starts and answers 503 meanwhile)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> asyncpg.Pool:
        if self.pool is None:
            async with self._lock:
                if self.pool is None:
                    try:
                        self.pool = await create_pool(self.settings)
                    except (OSError, asyncpg.PostgresError) as exc:
                        log.warning("database unavailable: %s", exc)
                        raise DatabaseUnavailable("the database is unavailable") from exc
        return self.pool

    async def close(self) -> None:
        """Close the pool gracefully; a connection still marked in use after
        ``POOL_CLOSE_S`` (a task cancelled at a bad moment) is terminated, so a worker's
        shutdown never hangs."""
        if self.pool is not None:
            try:
                await asyncio.wait_for(self.pool.close(), POOL_CLOSE_S)
            except TimeoutError:
                log.warning("database pool did not close within %s s; terminating it",
                            POOL_CLOSE_S)
                self.pool.terminate()


def lifespan(settings: Settings):
    @asynccontextmanager
    async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.pools = PoolHolder(settings)
        with contextlib.suppress(DatabaseUnavailable):
            await app.state.pools.get()
        try:
            yield
        finally:
            await app.state.pools.close()

    return _lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the Huế GIS API for ``settings`` (default: from ``HUEGIS_*`` variables)."""
    settings = settings or Settings()
    app = FastAPI(title="Huế GIS", version="0.1.0", lifespan=lifespan(settings),
                  description="Spatial services of the Huế Intelligent Operations Center.")
    app.state.settings = settings
    errors.install(app)
    parts = (LandingRouter(), AuthRouter(), FeaturesRouter(), TransactionsRouter(),
             QueriesRouter(), TilesRouter(), StylesRouter(), MapsRouter(), WMSRouter(),
             Open311Router(), IncidentsRouter(), StatsRouter(), GazetteerRouter(), WebRouter())
    for part in parts:
        app.include_router(part.router)
    app.add_middleware(TileFastPath, state=app.state)  # vector tiles before routing
    app.add_middleware(ItemsFastPath, state=app.state)  # GeoJSON items before routing
    return app
