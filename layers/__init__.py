"""The layer catalog: every thematic layer of Huế GIS, declared once.

>>> sorted(CATALOG)[:3]
['construction', 'education', 'elevation']
>>> CATALOG["parcels"].table
'land_parcels'
"""

from layers.base import Field, Layer, RasterLayer, Style
from layers.construction import CONSTRUCTION
from layers.education import EDUCATION
from layers.health import HEALTH
from layers.incidents import INCIDENTS
from layers.parcels import PARCELS
from layers.rasters import ELEVATION, FLOOD_DEPTH
from layers.tourism import TOURISM
from layers.wards import WARDS

VECTOR_LAYERS: dict[str, Layer] = {
    layer.id: layer
    for layer in (WARDS, PARCELS, CONSTRUCTION, TOURISM, HEALTH, EDUCATION, INCIDENTS)
}
RASTER_LAYERS: dict[str, RasterLayer] = {r.id: r for r in (FLOOD_DEPTH, ELEVATION)}
CATALOG: dict[str, Layer | RasterLayer] = {**VECTOR_LAYERS, **RASTER_LAYERS}

ATTRIBUTION = (
    "Map data © OpenStreetMap contributors (ODbL), via Humanitarian OpenStreetMap Team exports · "
    "censusVN2009 © 2017 Marc Choisy (MIT) · vietnam-3d-map © 2025 Lam Ngoc Khuong (MIT) · "
    "dvhcvn/20250701 © 2025 dvhcvn (MIT)"
)


__all__ = ["ATTRIBUTION", "CATALOG", "RASTER_LAYERS", "VECTOR_LAYERS", "Field", "Layer",
           "RasterLayer", "Style"]
