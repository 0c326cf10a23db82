"""Looking layers up in the catalog, with errors that say what exists."""

from __future__ import annotations

from gis.errors import LayerNotFound
from layers import CATALOG, VECTOR_LAYERS, Layer, RasterLayer


def vector_layer(layer_id: str | Layer) -> Layer:
    """The vector layer ``layer_id``, or ``LayerNotFound`` naming the ones that exist.

    A :class:`Layer` is accepted too, and must be the catalog's own declaration.

    >>> vector_layer("parcels").table
    'land_parcels'
    >>> vector_layer("flood-depth")
    Traceback (most recent call last):
    ...
    gis.errors.LayerNotFound: 'flood-depth' is a raster layer: it has no features or vector tiles
    """
    if isinstance(layer_id, Layer):
        if VECTOR_LAYERS.get(layer_id.id) != layer_id:
            raise LayerNotFound(f"layer {layer_id.id!r} is not the catalog's", layer=layer_id.id)
        return layer_id
    layer = VECTOR_LAYERS.get(layer_id)
    if layer is not None:
        return layer
    if layer_id in CATALOG:
        raise LayerNotFound(f"{layer_id!r} is a raster layer: it has no features or vector "
                            "tiles", layer=layer_id)
    raise LayerNotFound(f"unknown layer {layer_id!r}; vector layers: "
                        f"{', '.join(VECTOR_LAYERS)}", layer=layer_id)


def any_layer(layer_id: str) -> Layer | RasterLayer:
    """The vector or raster layer ``layer_id``, or ``LayerNotFound``."""
    layer = CATALOG.get(layer_id)
    if layer is None:
        raise LayerNotFound(f"unknown layer {layer_id!r}; layers: {', '.join(CATALOG)}",
                            layer=layer_id)
    return layer
