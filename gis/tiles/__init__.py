"""Vector tiles: MVT built in PostGIS, generalized views, the tile cache and its invalidation."""

from gis.tiles.mvt import BUFFER, EXTENT, SUPPORTED_TMS, check_tile, mvt_sql, tile_matrix_set

__all__ = ["BUFFER", "EXTENT", "SUPPORTED_TMS", "check_tile", "mvt_sql", "tile_matrix_set"]
