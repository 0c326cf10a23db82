"""Authentication: API keys (``X-API-Key``), OAuth2 password flow with JWT (``/auth/token``).

``current_principal`` resolves the caller of a request: anonymous callers are
:data:`gis.auth.PUBLIC`; credentials that are present but wrong are a 401, never silently
anonymous.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Security
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

from gis.auth import PUBLIC, Principal
from gis.auth.resolve import authenticate, principal_for_key, principal_for_token
from gis.auth.tokens import issue_token
from gis.errors import Unauthorized


async def current_principal(request: Request) -> Principal:
    """The caller of ``request`` (anonymous: :data:`gis.auth.PUBLIC`)."""
    key = request.headers.get("x-api-key")
    authorization = request.headers.get("authorization")
    if key is None and authorization is None:
        return PUBLIC
    pool = await request.app.state.pools.get()
    if key is not None:
        return await principal_for_key(pool, key)
    assert authorization is not None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("use 'Authorization: Bearer <token>' (from /auth/token) or "
                           "an X-API-Key header")
    return await principal_for_token(pool, request.app.state.settings, token.strip())


PrincipalDep = Annotated[Principal, Depends(current_principal)]

# The two schemes as OpenAPI sees them (the "Authorize" button of /docs): a route lists them
# with ``dependencies=SECURITY``; they only document, ``current_principal`` does the work.
API_KEY_SCHEME = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="An API key from `huegis apikey create`")
BEARER_SCHEME = OAuth2PasswordBearer(tokenUrl="auth/token", auto_error=False,
                                     description="A bearer token from /auth/token")
SECURITY = [Security(API_KEY_SCHEME), Security(BEARER_SCHEME)]


@dataclass
class AuthRouter:
    """``/auth/token`` (OAuth2 password flow) and ``/auth/me``."""

    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Auth"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        r = self.router

        @r.post("/auth/token", summary="Sign in: a bearer token for a username and password",
                responses={401: {"description": "Wrong username or password"}})
        async def token(
            request: Request,
            username: Annotated[str, Form(max_length=200)],
            password: Annotated[str, Form(max_length=1000)],
            grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
        ) -> dict:
            """Exchange a username and password (OAuth2 password form) for a bearer token."""
            pool = await request.app.state.pools.get()
            who = await authenticate(pool, username, password)
            assert who.user_id is not None
            settings = request.app.state.settings
            access, ttl = issue_token(settings, who.user_id, who.name, who.role)
            return {"access_token": access, "token_type": "bearer", "expires_in": ttl}

        @r.get("/auth/me", summary="Who am I", dependencies=SECURITY)
        async def me(principal: PrincipalDep) -> dict:
            """The caller as the service sees it: role, name and (inspectors) wards."""
            return {"role": principal.role, "name": principal.name,
                    "user_id": principal.user_id, "wards": sorted(principal.wards),
                    "via": principal.via}
