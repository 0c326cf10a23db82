"""OGC API Features Part 4: create, replace, update and delete features of editable layers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Header, Request, Response

from api.auth import SECURITY
from api.deps import LayerDep, PoolDep, PrincipalDep, SettingsDep, base_url
from gis.auth import Principal
from gis.crs import CRS84_URI
from gis.errors import InvalidParameter, PayloadTooLarge, UnsupportedMediaType
from gis.features import transactions as tx
from gis.settings import Settings
from layers import Layer

GEOJSON = "application/geo+json"
MERGE_PATCH = "application/merge-patch+json"
_FEATURE_TYPES = (GEOJSON, "application/json")


async def _body(request: Request, settings: Settings, accepted: tuple[str, ...]) -> object:
    """The request's JSON body: 415 for another media type, 413 beyond the size limit, 400
    when it is not JSON."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in accepted:
        raise UnsupportedMediaType(f"send the feature as {' or '.join(accepted)}, not "
                                   f"{media or 'no Content-Type'}")
    limit = settings.max_feature_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body has {declared} bytes; at most {limit} are accepted")
    size = 0
    chunks = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body exceeds {limit} bytes")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidParameter(f"the body is not valid JSON: {exc}") from None


async def _change(request: Request, pool: asyncpg.Pool, settings: Settings, layer: Layer,
                  principal: Principal, accepted: tuple[str, ...],
                  write: Callable[[asyncpg.Connection, object], Awaitable[tx.Written]]
                  ) -> tx.Written:
    """Check the caller may edit (before reading the body), read the body, write it."""
    tx.check_may_edit(layer, principal)
    doc = await _body(request, settings, accepted)
    async with pool.acquire() as conn:
        return await write(conn, doc)


def _feature_response(written: tx.Written, status: int = 200,
                      location: str | None = None) -> Response:
    headers = {"Content-Crs": f"<{CRS84_URI}>"}
    if written.etag:
        headers["ETag"] = written.etag
    if location:
        headers["Location"] = location
    return Response(written.feature, status_code=status, media_type=GEOJSON, headers=headers)


_BODY = {"requestBody": {"required": True, "content": {
    GEOJSON: {"schema": {"type": "object", "description": "A GeoJSON Feature"}}}}}
_PATCH_BODY = {"requestBody": {"required": True, "content": {
    MERGE_PATCH: {"schema": {"type": "object",
                             "description": "A JSON merge patch (RFC 7396) of the Feature"}}}}}
IfMatch = Annotated[str | None, Header(
    alias="If-Match", description="The feature's ETag (required: 428 without, 412 when stale)")]
ContentCrs = Annotated[str | None, Header(
    alias="Content-Crs", description="CRS of the geometry, e.g. "
    "<http://www.opengis.net/def/crs/EPSG/0/9214> (default CRS84)")]


@dataclass
class TransactionsRouter:
    """POST ``/collections/{id}/items``; PUT, PATCH, DELETE ``…/items/{featureId}``."""

    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Features"],
                                                                dependencies=SECURITY))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        r = self.router
        item = "/collections/{collection_id}/items/{feature_id}"

        @r.post("/collections/{collection_id}/items", status_code=201,
                summary="Add a feature (planners, admins)", response_class=Response,
                openapi_extra=_BODY)
        async def create(request: Request, layer: LayerDep, pool: PoolDep,
                         settings: SettingsDep, principal: PrincipalDep,
                         content_crs: ContentCrs = None) -> Response:
            """Add a GeoJSON Feature to an editable collection (201 with its Location)."""
            written = await _change(request, pool, settings, layer, principal, _FEATURE_TYPES,
                                    lambda conn, doc: tx.create(conn, layer, principal, doc,
                                                                content_crs))
            where = f"{base_url(request, settings)}/collections/{layer.id}/items/{written.id}"
            return _feature_response(written, 201, where)

        @r.put(item, summary="Replace a feature (planners, admins)", response_class=Response,
               openapi_extra=_BODY)
        async def replace(request: Request, layer: LayerDep, pool: PoolDep,
                          settings: SettingsDep, principal: PrincipalDep, feature_id: str,
                          if_match: IfMatch = None, content_crs: ContentCrs = None
                          ) -> Response:
            """Replace a feature's geometry and properties (needs If-Match)."""
            return _feature_response(await _change(
                request, pool, settings, layer, principal, _FEATURE_TYPES,
                lambda conn, doc: tx.replace(conn, layer, principal, feature_id, doc, if_match,
                                             content_crs)))

        @r.patch(item, summary="Update a feature (JSON merge patch)", response_class=Response,
                 openapi_extra=_PATCH_BODY)
        async def update(request: Request, layer: LayerDep, pool: PoolDep,
                         settings: SettingsDep, principal: PrincipalDep, feature_id: str,
                         if_match: IfMatch = None, content_crs: ContentCrs = None
                         ) -> Response:
            """Change some properties or the geometry of a feature (needs If-Match)."""
            return _feature_response(await _change(
                request, pool, settings, layer, principal, (MERGE_PATCH, *_FEATURE_TYPES),
                lambda conn, doc: tx.update(conn, layer, principal, feature_id, doc, if_match,
                                            content_crs)))

        @r.delete(item, status_code=204, summary="Delete a feature (planners, admins)",
                  response_class=Response)
        async def delete(layer: LayerDep, pool: PoolDep, principal: PrincipalDep,
                         feature_id: str, if_match: IfMatch = None) -> Response:
            """Delete a feature (needs If-Match); the audit keeps its last state."""
            tx.check_may_edit(layer, principal)
            async with pool.acquire() as conn:
                await tx.delete(conn, layer, principal, feature_id, if_match)
            return Response(status_code=204)
