"""Glyph ranges (signed-distance-field PBFs) for the labels of the MapLibre styles.

MapLibre draws text from 256-codepoint glyph ranges at ``/fonts/{fontstack}/{range}.pbf``.
They are made here from DejaVu Sans (shipped in the mapnik wheel, else Debian's
fonts-dejavu-core), so the maps label in Vietnamese with no font server and no internet: each
glyph is rasterised by Pillow at 24 px and turned into a distance field (radius 8, cutoff 0.25,
3 px border), the encoding MapLibre reads.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gis.errors import NotFound

SIZE = 24
BORDER = 3
RADIUS = 8.0
CUTOFF = 0.25
# Baseline-to-origin offset MapLibre expects of server glyphs (as its own local glyphs use).
TOP_ADJUST = 27
FONTSTACK = "DejaVu Sans Book"
_FONT_FILES = {"DejaVu Sans Book": "DejaVuSans.ttf", "DejaVu Sans Bold": "DejaVuSans-Bold.ttf"}


def font_file(fontstack: str) -> Path:
    """The TrueType file of the first known font of a comma-separated font stack.

    >>> font_file("DejaVu Sans Book").name
    'DejaVuSans.ttf'
    """
    for name in fontstack.split(","):
        filename = _FONT_FILES.get(name.strip())
        if filename is None:
            continue
        spec = importlib.util.find_spec("mapnik")  # found, not imported (it resets PROJ_LIB)
        dirs = [Path("/usr/share/fonts/truetype/dejavu")]
        if spec and spec.origin:
            dirs.insert(0, Path(spec.origin).parent / "lib" / "mapnik" / "fonts")
        for d in dirs:
            if (d / filename).exists():
                return d / filename
    raise NotFound(f"unknown font stack {fontstack!r}; fonts: {', '.join(_FONT_FILES)}")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(tag: int, value: int | bytes, signed: bool = False) -> bytes:
    if isinstance(value, bytes):
        return _varint(tag << 3 | 2) + _varint(len(value)) + value
    if signed:
        value = (value << 1) ^ (value >> 63)  # zigzag
    return _varint(tag << 3) + _varint(value)


def _edt(f: np.ndarray) -> np.ndarray:
    """Squared distance transform of a sampled function: min over q of |p-q|² + f(q), done
    separably (columns, then rows) by brute force, which is quick at glyph sizes."""
    h, w = f.shape
    dy = (np.arange(h)[:, None] - np.arange(h)[None, :]) ** 2.0
    g = (dy[:, :, None] + f[None, :, :]).min(axis=1)
    dx = (np.arange(w)[:, None] - np.arange(w)[None, :]) ** 2.0
    return (dx[None, :, :] + g[:, None, :]).min(axis=2)


def _sdf(alpha: np.ndarray) -> np.ndarray:
    """Distance field of an anti-aliased coverage image (0..1), encoded as MapLibre expects."""
    a = alpha
    # Squared sub-pixel distance of each pixel to the edge, from outside and from inside.
    big = 1e20
    outer = np.where(a >= 1, 0.0, np.where(a <= 0, big, np.maximum(0, 0.5 - a) ** 2))
    inner = np.where(a >= 1, big, np.where(a <= 0, 0.0, np.maximum(0, a - 0.5) ** 2))
    dist = np.sqrt(_edt(outer)) - np.sqrt(_edt(inner))
    value = 255 - 255 * (dist / RADIUS + CUTOFF)
    return np.clip(np.round(value), 0, 255).astype(np.uint8)


def _glyph(font: ImageFont.FreeTypeFont, codepoint: int) -> bytes | None:
    char = chr(codepoint)
    try:
        advance = round(font.getlength(char))
    except (ValueError, OSError):
        return None
    left, top, right, bottom = font.getbbox(char, anchor="ls")  # relative to the baseline
    w, h = max(0, right - left), max(0, bottom - top)
    body = _field(1, codepoint)
    if w and h:
        img = Image.new("L", (w + 2 * BORDER, h + 2 * BORDER), 0)
        ImageDraw.Draw(img).text((BORDER - left, BORDER - top), char, font=font, fill=255,
                                 anchor="ls")
        bitmap = _sdf(np.asarray(img, dtype=np.float64) / 255.0)
        body += _field(2, bitmap.tobytes())
    body += _field(3, w) + _field(4, h) + _field(5, left, signed=True)
    body += _field(6, -top - TOP_ADJUST, signed=True) + _field(7, advance)
    return _field(3, body)


@lru_cache(maxsize=32)
def glyph_range(fontstack: str, start: int) -> bytes:
    """The PBF of the 256 codepoints from ``start`` (a multiple of 256) for ``fontstack``.

    Codepoints the font lacks are left out (MapLibre then draws nothing for them).

    >>> data = glyph_range("DejaVu Sans Book", 0)
    >>> len(data) > 10_000, data[:1]
    (True, b'\\n')
    """
    if start % 256 or not 0 <= start <= 65280:
        raise NotFound(f"glyph range must start at a multiple of 256 up to 65280, not {start}")
    path = font_file(fontstack)
    font = ImageFont.truetype(str(path), SIZE, layout_engine=ImageFont.Layout.BASIC)
    notdef = _notdef(font)
    parts = []
    for cp in range(start, start + 256):
        if cp >= 32 and _signature(font, cp) != notdef:
            glyph = _glyph(font, cp)
            if glyph:
                parts.append(glyph)
    stack = _field(1, fontstack.encode()) + _field(2, f"{start}-{start + 255}".encode())
    return _field(1, stack + b"".join(parts))


def _signature(font: ImageFont.FreeTypeFont, codepoint: int) -> tuple:
    char = chr(codepoint)
    return font.getbbox(char), font.getlength(char), bytes(font.getmask(char))


def _notdef(font: ImageFont.FreeTypeFont) -> tuple:
    """What the font draws for a codepoint it lacks (its .notdef glyph)."""
    return _signature(font, 0x10FFFD)
