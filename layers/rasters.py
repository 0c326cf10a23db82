"""Raster layers: Cloud-Optimized GeoTIFFs registered in ``raster_datasets``."""

from layers.base import RasterLayer

FLOOD_DEPTH = RasterLayer(
    id="flood-depth",
    title="Flood depth (design flood)",
    title_vi="Độ sâu ngập lụt",
    description="Modelled flood depth in metres for a design flood on the Hương river plain.",
    units="m",
    nodata=-9999.0,
    filename="flood_depth.tif",
    colormap="blues",
    rescale=(0.0, 3.0),
    keywords=("flood", "hazard"),
)

ELEVATION = RasterLayer(
    id="elevation",
    title="Elevation",
    title_vi="Độ cao địa hình",
    description="Ground elevation in metres above mean sea level.",
    units="m",
    nodata=-9999.0,
    filename="elevation.tif",
    colormap="terrain",
    rescale=(0.0, 1500.0),
    keywords=("elevation", "DEM"),
)
