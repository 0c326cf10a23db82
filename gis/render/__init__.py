"""Rendered maps: Mapnik PNG tiles and images from the catalog's styles, raster tiles with
rio-tiler, legends, and the WMS 1.3.0 service on the same renderer."""

from gis.render.engine import (
                               FORMATS,
                               MAX_PIXELS,
                               MAX_SIDE,
                               MapView,
                               Output,
                               Renderer,
                               check_size,
                               empty_png,
                               encode,
                               parse_color,
)
from gis.render.legend import legend_entries, legend_png
from gis.render.mapnik_env import mapnik_module
from gis.render.raster import RasterStyle, value_at
from gis.render.style import RENDER_THREADS, PostgisParams, map_xml, scale_for_zoom

__all__ = ["FORMATS", "MAX_PIXELS", "MAX_SIDE", "MapView", "Output", "PostgisParams",
           "RENDER_THREADS", "RasterStyle", "Renderer", "check_size", "empty_png", "encode",
           "legend_entries", "legend_png", "map_xml", "mapnik_module", "parse_color",
           "scale_for_zoom", "value_at"]
