"""Raster layers drawn with rio-tiler from their Cloud-Optimized GeoTIFFs: map tiles, map
images in any supported CRS, and the value at a point."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from gis.errors import InvalidParameter, OutsideHue
from layers import RasterLayer


@dataclass(frozen=True)
class RasterStyle:
    """How a raster is coloured: a rio-tiler colormap name and the value range mapped onto it."""

    colormap: str
    rescale: tuple[float, float]

    @classmethod
    def parse(cls, layer: RasterLayer, colormap: str | None = None,
              rescale: str | Sequence[float] | None = None) -> RasterStyle:
        """The catalog's style, overridden by request parameters (validated, 400 when bad).

        >>> from layers import RASTER_LAYERS
        >>> RasterStyle.parse(RASTER_LAYERS['flood-depth'], 'viridis', '0,2')
        RasterStyle(colormap='viridis', rescale=(0.0, 2.0))
        >>> RasterStyle.parse(RASTER_LAYERS['flood-depth'], rescale='2,1')
        Traceback (most recent call last):
        ...
        gis.errors.InvalidParameter: rescale must be 'min,max' with min < max, got '2,1'
        """
        name = (colormap or layer.colormap).strip().lower()
        if name not in colormap_names():
            raise InvalidParameter(f"unknown colormap {colormap!r}; e.g. viridis, blues, "
                                   "terrain, magma (rio-tiler's names)")
        if rescale is None or rescale == "":
            lo, hi = layer.rescale
        else:
            parts = rescale.split(",") if isinstance(rescale, str) else list(rescale)
            try:
                lo, hi = (float(p) for p in parts)
            except (TypeError, ValueError):
                raise InvalidParameter(f"rescale must be 'min,max' with min < max, got "
                                       f"{rescale!r}") from None
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise InvalidParameter(f"rescale must be 'min,max' with min < max, got "
                                       f"{rescale!r}")
        return cls(name, (float(lo), float(hi)))


@lru_cache(maxsize=1)
def colormap_names() -> frozenset[str]:
    from rio_tiler.colormap import cmap

    return frozenset(cmap.list())


@lru_cache(maxsize=64)
def colormap_lut(name: str) -> np.ndarray:
    """The colormap as a (256, 4) uint8 lookup table."""
    from rio_tiler.colormap import cmap

    lut = np.zeros((256, 4), dtype=np.uint8)
    for value, rgba in cmap.get(name).items():
        lut[int(value)] = rgba
    return lut


def colorize(data: np.ma.MaskedArray, style: RasterStyle) -> np.ndarray:
    """One masked band → RGBA (H, W, 4): rescaled to 0–255, coloured, masked pixels clear."""
    band = np.ma.getdata(data)[0].astype("float64")
    lo, hi = style.rescale
    idx = np.clip(np.rint((band - lo) / (hi - lo) * 255.0), 0, 255).astype(np.uint8)
    rgba = colormap_lut(style.colormap)[idx]
    mask = np.ma.getmaskarray(data)[0]
    rgba[mask] = 0
    return rgba


_readers = threading.local()


def _reader(path: Path, tms):
    """An open rio-tiler Reader of ``path`` for ``tms``, kept per thread (a dataset handle is
    not shared between threads) and reopened when the file changes."""
    from rio_tiler.io import Reader

    cache = getattr(_readers, "cache", None)
    if cache is None:
        cache = _readers.cache = {}
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size, tms.id)
    reader = cache.get(key)
    if reader is None:
        for old in [k for k in cache if k[0] == key[0] and k[3] == key[3]]:
            cache.pop(old).close()
        reader = cache[key] = Reader(str(path), tms=tms)
    return reader


def tile_png(path: Path, tms, x: int, y: int, z: int, tilesize: int,
             style: RasterStyle) -> bytes | None:
    """A PNG map tile of a COG (as TiTiler renders it), or ``None`` outside the raster."""
    from rio_tiler.errors import TileOutsideBounds

    try:
        img = _reader(path, tms).tile(x, y, z, tilesize=tilesize)
    except TileOutsideBounds:
        return None
    img.rescale(in_range=(style.rescale,))
    from rio_tiler.colormap import cmap

    return img.render(img_format="PNG", colormap=cmap.get(style.colormap))


def part_rgba(path: Path, bbox: tuple[float, float, float, float], srid: int, width: int,
              height: int, style: RasterStyle) -> np.ndarray | None:
    """The COG resampled onto a map view (``bbox`` in ``srid``) as RGBA, or ``None`` when the
    view misses the raster."""
    from rasterio.crs import CRS
    from rio_tiler.errors import RioTilerError
    from rio_tiler.io import Reader

    crs = CRS.from_epsg(srid)
    try:
        with Reader(str(path)) as src:
            img = src.part(bbox, dst_crs=crs, bounds_crs=crs, width=width, height=height)
    except RioTilerError:
        return None
    return colorize(img.array, style)


def value_at(path: Path, lon: float, lat: float) -> float | None:
    """The raster's value at a lon/lat point (``None`` for nodata); ``OutsideHue`` when the
    point is outside the raster.

    The synthetic rasters are in EPSG:9214; rio-tiler reprojects the point.
    """
    from rio_tiler.errors import PointOutsideBounds
    from rio_tiler.io import Reader

    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180
            and -90 <= lat <= 90):
        raise InvalidParameter(f"lon/lat must be a WGS 84 position, got {lon}, {lat}")
    try:
        with Reader(str(path)) as src:
            pt = src.point(lon, lat)
    except PointOutsideBounds:
        raise OutsideHue(f"({lon}, {lat}) is outside the raster") from None
    arr = pt.array
    if bool(np.ma.getmaskarray(arr)[0]):
        return None
    # Shortest decimal that is the stored float32 (3.2, not 3.200000047683716).
    return float(str(np.float32(np.ma.getdata(arr)[0])))
