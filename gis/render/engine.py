"""The renderer: a map view (bbox, CRS, size) and an ordered list of catalog layers → image.

Vector layers are drawn by Mapnik straight from PostGIS (public fields only), raster layers by
rio-tiler from their COGs; consecutive vector layers share one Mapnik pass and the passes are
composited in order (first layer at the bottom). Rendering is blocking: call it from a thread.
"""

from __future__ import annotations

import io
import math
import struct
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gis.errors import DatabaseUnavailable, ImageTooLarge, InvalidParameter
from gis.render.mapnik_env import mapnik_module
from gis.render.raster import RasterStyle, part_rgba, tile_png
from gis.render.style import FONT_FACE, PostgisParams, map_xml
from layers import Layer, RasterLayer

MAX_SIDE = 4096
MAX_PIXELS = 4096 * 4096
FORMATS = {"png": "image/png", "jpeg": "image/jpeg"}
# PNG: zlib level 1 with run-length matching over rows "Sub"-filtered (each byte minus the one
# a pixel to its left): map colours come in horizontal runs, so a 1024² map encodes in a third
# of the time of Pillow's (which tries five filters on every row), at the same size.
PNG_COMPRESSION = 1
TILE_BUFFER = 64  # px around a tile where labels and symbols are placed too (no seams)


def check_size(width: int, height: int) -> None:
    """Raise unless the image size is within limits (``ImageTooLarge``, 400, beyond).

    >>> check_size(1024, 1024)
    >>> check_size(5000, 5000)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gis.errors.ImageTooLarge: image of 5000 × 5000 px is too large: at most 4096 px a side...
    """
    if width < 1 or height < 1:
        raise InvalidParameter(f"width and height must be positive, got {width} × {height}")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise ImageTooLarge(f"image of {width} × {height} px is too large: at most {MAX_SIDE} "
                            f"px a side and {MAX_PIXELS} px in all")


def parse_color(text: str | None, default: tuple[int, int, int] = (255, 255, 255)
                ) -> tuple[int, int, int]:
    """``0xRRGGBB``, ``#RRGGBB`` or ``RRGGBB`` → RGB.

    >>> parse_color("0xFF8000")
    (255, 128, 0)
    """
    if text is None or text == "":
        return default
    t = text.strip()
    for prefix in ("0x", "0X", "#"):
        if t.startswith(prefix):
            t = t[len(prefix):]
    if len(t) != 6:
        raise InvalidParameter(f"colour must be 0xRRGGBB, got {text!r}")
    try:
        v = int(t, 16)
    except ValueError:
        raise InvalidParameter(f"colour must be 0xRRGGBB, got {text!r}") from None
    return (v >> 16 & 255, v >> 8 & 255, v & 255)


@dataclass(frozen=True)
class MapView:
    """What to draw: ``bbox`` (x/y order: east, north) in ``srid``, an image of
    ``width`` × ``height`` px, symbols scaled by ``scale_factor`` (2 for @2x tiles)."""

    bbox: tuple[float, float, float, float]
    srid: int
    width: int
    height: int
    scale_factor: float = 1.0
    buffer: int = 0
    # For map tiles: (tms, x, y, z), so a single raster layer is drawn as TiTiler does.
    tile: tuple | None = None

    def __post_init__(self) -> None:
        w, s, e, n = self.bbox
        if not all(math.isfinite(v) for v in self.bbox) or w >= e or s >= n:
            raise InvalidParameter(f"bbox must be finite with min < max, got {self.bbox}")
        check_size(self.width, self.height)


@dataclass(frozen=True)
class Output:
    """Image format and background: PNG (transparent unless told otherwise) or JPEG."""

    format: str = "png"
    transparent: bool = True
    bgcolor: tuple[int, int, int] = (255, 255, 255)

    @property
    def media_type(self) -> str:
        return FORMATS[self.format]


@dataclass
class Renderer:
    """Renders map views of catalog layers from one database (``dsn``) and raster files.

    Mapnik maps are built once per thread and per layer combination, then re-used (a Mapnik
    map is not thread-safe; its datasources keep a pool of PostGIS connections).
    """

    dsn: str
    raster_path: dict[str, Path] = field(default_factory=dict)
    # Tables with the stored Web Mercator column ``geom_3857`` (see the tiles migration).
    stored_3857: frozenset[str] = frozenset()
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def __post_init__(self) -> None:
        self.params = PostgisParams.from_dsn(self.dsn)

    # ------------------------------------------------------------------ Mapnik
    def _mapnik_map(self, layers: tuple[Layer, ...], srid: int, labels: bool, buffer: int,
                    scale_limits: bool):
        mapnik = mapnik_module()
        cache = getattr(self._local, "maps", None)
        if cache is None:
            cache = self._local.maps = {}
        key = (tuple(la.id for la in layers), srid, labels, buffer, scale_limits)
        m = cache.get(key)
        if m is None:
            with _build_lock:  # Mapnik's font and plugin registries are shared by threads
                ensure_fonts()
                m = mapnik.Map(256, 256)
                mapnik.load_map_from_string(m, map_xml(layers, srid, self.params, labels,
                                                       buffer, scale_limits, self.stored_3857))
            m.aspect_fix_mode = mapnik.aspect_fix_mode.RESPECT
            if len(cache) > 64:
                cache.clear()
            cache[key] = m
        return m

    def _mapnik_image(self, view: MapView, layers: tuple[Layer, ...], labels: bool,
                      scale_limits: bool):
        mapnik = mapnik_module()
        try:
            m = self._mapnik_map(layers, view.srid, labels, view.buffer, scale_limits)
            m.resize(view.width, view.height)
            m.zoom_to_box(mapnik.Box2d(*view.bbox))
            im = mapnik.Image(view.width, view.height)
            mapnik.render(m, im, view.scale_factor)
        except RuntimeError as exc:  # Mapnik reports PostGIS failures as RuntimeError
            if "Postgis Plugin" not in str(exc):
                raise
            self._local.maps = {}  # its connections may be dead: rebuild on the next request
            raise DatabaseUnavailable("the database is unavailable for rendering") from exc
        return im

    def vector_rgba(self, view: MapView, layers: Sequence[Layer], labels: bool = True,
                    scale_limits: bool = True) -> np.ndarray:
        """Vector layers drawn by Mapnik as straight-alpha RGBA (H, W, 4)."""
        im = self._mapnik_image(view, tuple(layers), labels, scale_limits)
        im.demultiply()
        return np.frombuffer(im.to_string(), dtype=np.uint8).reshape(
            view.height, view.width, 4).copy()

    # ------------------------------------------------------------------ any layers
    def render(self, view: MapView, layers: Sequence[Layer | RasterLayer],
               output: Output = Output(), labels: bool = True, scale_limits: bool = True,
               raster_styles: dict[str, RasterStyle] | None = None) -> bytes:
        """Draw ``layers`` (first at the bottom) on ``view`` and encode the image."""
        raster_styles = raster_styles or {}
        layers = list(layers)
        plain = output.format == "png" and output.transparent
        if plain and layers and all(isinstance(la, Layer) for la in layers):
            # Encoded by Pillow, which releases the GIL while compressing (Mapnik's own PNG
            # writer holds it, stalling the event loop during large WMS images).
            return encode(self.vector_rgba(view, layers, labels, scale_limits),  # type: ignore
                          output)
        if (plain and len(layers) == 1 and isinstance(layers[0], RasterLayer)
                and view.tile is not None):
            tms, x, y, z = view.tile
            style = raster_styles.get(layers[0].id) or RasterStyle.parse(layers[0])
            png = tile_png(self.raster_path[layers[0].id], tms, x, y, z, view.width, style)
            return png if png is not None else empty_png(view.width, view.height)
        canvas = np.zeros((view.height, view.width, 4), dtype=np.uint8)
        group: list[Layer] = []

        def flush() -> None:
            if group:
                _over(canvas, self.vector_rgba(view, group, labels, scale_limits))
                group.clear()

        for layer in layers:
            if isinstance(layer, Layer):
                group.append(layer)
                continue
            flush()
            style = raster_styles.get(layer.id) or RasterStyle.parse(layer)
            rgba = part_rgba(self.raster_path[layer.id], view.bbox, view.srid, view.width,
                             view.height, style)
            if rgba is not None:
                _over(canvas, rgba)
        flush()
        return encode(canvas, output)


def _over(dst: np.ndarray, src: np.ndarray) -> None:
    """Porter-Duff "source over" of straight-alpha RGBA arrays, in place."""
    sa = src[..., 3:4].astype(np.float32) / 255.0
    da = dst[..., 3:4].astype(np.float32) / 255.0
    oa = sa + da * (1.0 - sa)
    rgb = (src[..., :3] * sa + dst[..., :3] * da * (1.0 - sa)) / np.maximum(oa, 1e-6)
    dst[..., :3] = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    dst[..., 3:4] = np.clip(np.rint(oa * 255.0), 0, 255).astype(np.uint8)


def encode(rgba: np.ndarray, output: Output) -> bytes:
    """RGBA → PNG (kept transparent, or flattened on ``bgcolor``) or JPEG (always flattened).

    >>> png = encode(np.full((2, 3, 4), 255, np.uint8), Output())
    >>> from PIL import Image
    >>> Image.open(io.BytesIO(png)).size, Image.open(io.BytesIO(png)).mode
    ((3, 2), 'RGBA')
    """
    if output.format == "png" and output.transparent:
        return png_bytes(rgba)
    from PIL import Image

    img = Image.fromarray(rgba, "RGBA")
    bg = Image.new("RGBA", img.size, (*output.bgcolor, 255))
    flat = Image.alpha_composite(bg, img).convert("RGB")
    if output.format == "png":
        return png_bytes(np.asarray(flat))
    buf = io.BytesIO()
    flat.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_bytes(pixels: np.ndarray) -> bytes:
    """An 8-bit RGB (H, W, 3) or RGBA (H, W, 4) array as a PNG: every row "Sub"-filtered, then
    deflated at :data:`PNG_COMPRESSION` with run-length matching (numpy and zlib both release
    the GIL, so other requests go on meanwhile).

    >>> from PIL import Image
    >>> a = np.arange(2 * 5 * 3, dtype=np.uint8).reshape(2, 5, 3)
    >>> bool((np.asarray(Image.open(io.BytesIO(png_bytes(a)))) == a).all())
    True
    """
    h, w, bpp = pixels.shape
    rows = np.ascontiguousarray(pixels, dtype=np.uint8).reshape(h, w * bpp)
    data = np.empty((h, w * bpp + 1), np.uint8)
    data[:, 0] = 1  # filter type Sub
    data[:, 1:bpp + 1] = rows[:, :bpp]
    np.subtract(rows[:, bpp:], rows[:, :-bpp], out=data[:, bpp + 1:])
    z = zlib.compressobj(PNG_COMPRESSION, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    idat = z.compress(data) + z.flush()
    colour_type = {3: 2, 4: 6}[bpp]
    return (b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0))
            + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))


_empty: dict[tuple[int, int], bytes] = {}


def empty_png(width: int, height: int) -> bytes:
    """A fully transparent PNG of the given size (cached)."""
    data = _empty.get((width, height))
    if data is None:
        data = _empty[(width, height)] = encode(np.zeros((height, width, 4), np.uint8),
                                                Output())
    return data


_fonts_checked = False
_build_lock = threading.Lock()


def ensure_fonts() -> None:
    """Make sure Mapnik knows :data:`FONT_FACE` (Vietnamese glyphs): the wheel ships DejaVu;
    otherwise Debian's ``fonts-dejavu`` directory is registered."""
    global _fonts_checked
    if _fonts_checked:
        return
    mapnik = mapnik_module()
    if FONT_FACE not in set(mapnik.FontEngine.face_names()):
        mapnik.register_fonts("/usr/share/fonts/truetype/dejavu")
    if FONT_FACE not in set(mapnik.FontEngine.face_names()):
        raise RuntimeError(f"font {FONT_FACE!r} not found: install fonts-dejavu-core")
    _fonts_checked = True
