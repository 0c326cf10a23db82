"""Typed FastAPI dependencies: the pool, the settings and the layer named in the path."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Path, Request

from gis.errors import LayerNotFound
from gis.settings import Settings
from layers import CATALOG, VECTOR_LAYERS, Layer, RasterLayer


def get_pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def vector_layer_from_path(
    collection_id: Annotated[str, Path(description="Collection id from the catalog")],
) -> Layer:
    layer = VECTOR_LAYERS.get(collection_id)
    if layer is None:
        if collection_id in CATALOG:
            raise LayerNotFound(f"collection {collection_id!r} is a raster layer and has no "
                                "features or vector tiles")
        raise LayerNotFound(f"unknown collection {collection_id!r}; available: "
                            f"{', '.join(CATALOG)}")
    return layer


def any_layer_from_path(
    collection_id: Annotated[str, Path(description="Collection id from the catalog")],
) -> Layer | RasterLayer:
    layer = CATALOG.get(collection_id)
    if layer is None:
        raise LayerNotFound(f"unknown collection {collection_id!r}; available: "
                            f"{', '.join(CATALOG)}")
    return layer


PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
LayerDep = Annotated[Layer, Depends(vector_layer_from_path)]
AnyLayerDep = Annotated[Layer | RasterLayer, Depends(any_layer_from_path)]


def base_url(request: Request, settings: Settings) -> str:
    """Base URL for links: the configured public URL, else the request's."""
    return (settings.public_base_url or str(request.base_url)).rstrip("/")
