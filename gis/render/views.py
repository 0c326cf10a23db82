"""Map views from requests: tiles of a tile matrix set, or a bbox in a CRS (with the axis order
that CRS declares: EPSG:4326 is latitude first in WMS 1.3.0 and OGC APIs, CRS84 is not)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from gis.crs import parse_bbox, parse_crs
from gis.errors import InvalidParameter, InvalidTile, TileMatrixSetNotFound, UnknownCRS
from gis.render.engine import TILE_BUFFER, MapView

MAP_TMS = ("WebMercatorQuad", "WorldCRS84Quad")
TILE_SIZES = (256, 512)
_CRS84 = re.compile(r"^(crs:84|ogc:crs84|crs84|https?://www\.opengis\.net/def/crs/ogc/1\.3/crs84"
                    r"|urn:ogc:def:crs:ogc:1\.3:crs84|urn:ogc:def:crs:ogc::crs84)$", re.I)


@dataclass(frozen=True)
class CRSRef:
    """A CRS named in a request: its SRID and whether its first axis is latitude/northing."""

    srid: int
    north_first: bool

    @classmethod
    def parse(cls, text: str) -> CRSRef:
        """Parse ``CRS:84``, ``EPSG:4326``, an OGC URI…; the axis order is the CRS's own.

        >>> CRSRef.parse("EPSG:4326"), CRSRef.parse("CRS:84"), CRSRef.parse("EPSG:9214")
        (CRSRef(srid=4326, north_first=True), CRSRef(srid=4326, north_first=False), \
CRSRef(srid=9214, north_first=False))
        """
        t = (text or "").strip()
        if _CRS84.match(t):
            return cls(4326, False)
        srid = parse_crs(t)
        return cls(srid, _north_first(srid))

    def xy_bbox(self, bbox: Sequence[float]) -> tuple[float, float, float, float]:
        """A bbox given in this CRS's axis order → x/y (east, north) order."""
        a, b, c, d = bbox
        return (b, a, d, c) if self.north_first else (a, b, c, d)


@lru_cache(maxsize=64)
def _north_first(srid: int) -> bool:
    from pyproj import CRS

    axes = CRS.from_epsg(srid).axis_info
    return bool(axes) and axes[0].direction.lower() in ("north", "south")


def parse_xy_bbox(text: str, crs: CRSRef) -> tuple[float, float, float, float]:
    """``'a,b,c,d'`` in ``crs``'s axis order → (minx, miny, maxx, maxy)."""
    return crs.xy_bbox(parse_bbox(text))


def transform_bbox(bbox: tuple[float, float, float, float], src: int, dst: int
                   ) -> tuple[float, float, float, float]:
    """The bounding box of ``bbox`` (x/y order) from ``src`` to ``dst`` (densified edges)."""
    if src == dst:
        return bbox
    from pyproj import Transformer

    t = Transformer.from_crs(src, dst, always_xy=True)
    out = t.transform_bounds(*bbox, densify_pts=21)
    if not all(abs(v) < 1e300 for v in out) or out[0] >= out[2] or out[1] >= out[3]:
        raise InvalidParameter(f"bbox {bbox} cannot be expressed in EPSG:{dst}")
    return tuple(out)  # type: ignore[return-value]


def map_tms(tms_id: str):
    """The morecantile TileMatrixSet of a map tile path (404 when not offered)."""
    import morecantile

    if tms_id not in MAP_TMS:
        raise TileMatrixSetNotFound(f"unknown tile matrix set {tms_id!r}; map tiles are "
                                    f"offered in {', '.join(MAP_TMS)}")
    return morecantile.tms.get(tms_id)


def parse_tile_col(x: str, tile_size: int | None) -> tuple[int, int]:
    """Tile column text (``'13'`` or ``'13@2x'``) and ``tileSize`` → (column, size in px).

    >>> parse_tile_col('13@2x', None), parse_tile_col('13', 512), parse_tile_col('13', None)
    ((13, 512), (13, 512), (13, 256))
    """
    size = 256
    text = x
    m = re.fullmatch(r"(\d+)@([12])x(?:\.png)?", x)
    if m:
        text, size = m.group(1), 256 * int(m.group(2))
    elif x.endswith(".png"):
        text = x[:-4]
    if not text.isdigit():
        raise InvalidTile(f"tile column must be a number (optionally with @2x), got {x!r}")
    if tile_size is not None:
        if tile_size not in TILE_SIZES:
            raise InvalidParameter(f"tileSize must be 256 or 512, got {tile_size}")
        size = tile_size
    return int(text), size


def tile_view(tms_id: str, z: int, y: int, x: int, size: int, buffer: int = TILE_BUFFER
              ) -> MapView:
    """The map view of tile z/y/x (row, then column) of ``tms_id`` at ``size`` px."""
    tms = map_tms(tms_id)
    if not 0 <= z <= min(tms.maxzoom, 24):
        raise InvalidTile(f"zoom {z} is out of range 0..{min(tms.maxzoom, 24)}")
    matrix = tms.matrix(z)
    if not 0 <= x < matrix.matrixWidth:
        raise InvalidTile(f"tile column {x} is out of range 0..{matrix.matrixWidth - 1} at "
                          f"zoom {z}")
    if not 0 <= y < matrix.matrixHeight:
        raise InvalidTile(f"tile row {y} is out of range 0..{matrix.matrixHeight - 1} at "
                          f"zoom {z}")
    import morecantile

    b = tms.xy_bounds(morecantile.Tile(x, y, z))
    srid = tms.crs.to_epsg() or 4326
    return MapView((b.left, b.bottom, b.right, b.top), srid, size, size, size / 256,
                   buffer, tile=(tms, x, y, z))


__all__ = ["CRSRef", "MAP_TMS", "UnknownCRS", "map_tms", "parse_tile_col", "parse_xy_bbox",
           "tile_view", "transform_bbox"]
