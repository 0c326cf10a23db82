"""Typed FastAPI dependencies: the pool, the settings and the layer named in the path."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Path, Request

from api.auth import current_principal
from gis.auth import Principal
from gis.catalog import any_layer, vector_layer
from gis.settings import Settings
from layers import Layer, RasterLayer


async def get_pool(request: Request) -> asyncpg.Pool:
    """The pool (503 ``DatabaseUnavailable`` while the database cannot be reached)."""
    return await request.app.state.pools.get()


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def vector_layer_from_path(
    collection_id: Annotated[str, Path(description="Collection id from the catalog")],
) -> Layer:
    return vector_layer(collection_id)


async def any_layer_from_path(
    collection_id: Annotated[str, Path(description="Collection id from the catalog")],
) -> Layer | RasterLayer:
    return any_layer(collection_id)


PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
LayerDep = Annotated[Layer, Depends(vector_layer_from_path)]
AnyLayerDep = Annotated[Layer | RasterLayer, Depends(any_layer_from_path)]
# The caller (anonymous unless an API key or a bearer token says otherwise).
PrincipalDep = Annotated[Principal, Depends(current_principal)]


def base_url(request: Request, settings: Settings) -> str:
    """Base URL for links: the configured public URL, else the request's."""
    return (settings.public_base_url or str(request.base_url)).rstrip("/")
