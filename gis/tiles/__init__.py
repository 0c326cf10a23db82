"""Vector tiles: MVT built in PostGIS, generalized views, the tile cache and its invalidation."""

from gis.tiles.cache import CachedTile, TileCache, TileKey
from gis.tiles.mvt import (
    BUFFER,
    EXTENT,
    SUPPORTED_TMS,
    check_tile,
    layer_tile,
    tile,
    tile_matrix_set,
)

__all__ = ["BUFFER", "EXTENT", "SUPPORTED_TMS", "CachedTile", "TileCache", "TileKey",
           "check_tile", "layer_tile", "tile", "tile_matrix_set"]
