"""Authentication: API keys (``X-API-Key``), OAuth2 password flow with JWT (``/auth/token``).

``current_principal`` resolves the caller of a request; until credentials are checked here,
every caller is the anonymous public principal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter, Request

from gis.auth import PUBLIC, Principal


async def current_principal(request: Request) -> Principal:
    """The caller of ``request`` (anonymous: :data:`gis.auth.PUBLIC`)."""
    return PUBLIC


@dataclass
class AuthRouter:
    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Auth"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        pass
