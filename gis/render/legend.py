"""Legend images drawn from the catalog: one swatch per class (or one for the layer), the
raster colour ramp with its range and units; titles in Vietnamese or English."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np

from gis.errors import InvalidParameter
from gis.render.raster import RasterStyle, colormap_lut
from gis.render.style import classify_field, star_points
from layers import Layer, RasterLayer

OTHER = {"vi": "Khác", "en": "Other"}


@lru_cache(maxsize=4)
def _font_path(bold: bool) -> str:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    candidates = [Path("/usr/share/fonts/truetype/dejavu") / name]
    import importlib.util

    spec = importlib.util.find_spec("mapnik")  # locates the wheel's fonts without importing it
    if spec and spec.origin:
        candidates.append(Path(spec.origin).parent / "lib" / "mapnik" / "fonts" / name)
    for c in candidates:
        if c.exists():
            return str(c)
    raise RuntimeError(f"font {name} not found: install fonts-dejavu-core")


def _font(size: int, bold: bool = False):
    from PIL import ImageFont

    return ImageFont.truetype(_font_path(bold), size)


def _hex(colour: str | None, alpha: float = 1.0) -> tuple[int, int, int, int]:
    c = (colour or "#333333").lstrip("#")
    return (int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), int(round(alpha * 255)))


def _swatch(draw, layer: Layer, fill: str | None, box: tuple[int, int, int, int],
            s: float) -> None:
    x0, y0, x1, y1 = box
    st = layer.style
    if layer.is_polygonal:
        draw.rectangle(box, fill=_hex(fill or "#ffffff", st.fill_opacity if fill else 0),
                       outline=_hex(st.stroke) if st.stroke else None,
                       width=max(1, round(st.stroke_width * s)))
        return
    if layer.geometry_type in ("LineString", "MultiLineString"):
        draw.line((x0, (y0 + y1) / 2, x1, (y0 + y1) / 2), fill=_hex(fill or st.stroke),
                  width=max(1, round(st.stroke_width * 2 * s)))
        return
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    r = min(st.radius * s, (x1 - x0) / 2)
    paint = dict(fill=_hex(fill), outline=_hex(st.stroke or fill))
    if st.symbol == "square":
        draw.rectangle((cx - r * 0.7, cy - r * 0.7, cx + r * 0.7, cy + r * 0.7), **paint)
    elif st.symbol == "triangle":
        draw.polygon([(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)], **paint)
    elif st.symbol == "star":
        draw.polygon(star_points(cx, cy, r), **paint)
    elif st.symbol == "cross":
        a, b = r, r * 0.35
        draw.polygon([(cx - b, cy - a), (cx + b, cy - a), (cx + b, cy - b), (cx + a, cy - b),
                      (cx + a, cy + b), (cx + b, cy + b), (cx + b, cy + a), (cx - b, cy + a),
                      (cx - b, cy + b), (cx - a, cy + b), (cx - a, cy - b), (cx - b, cy - b)],
                     **paint)
    else:
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), **paint)


def legend_entries(layer: Layer, lang: str = "vi") -> list[tuple[str | None, str]]:
    """(fill colour, label) of each legend line of a vector layer.

    >>> from layers import VECTOR_LAYERS
    >>> legend_entries(VECTOR_LAYERS['construction'])[:2]
    [('#fdb462', 'Giấy phép xây dựng'), ('#e31a1c', 'Vi phạm trật tự xây dựng')]
    >>> legend_entries(VECTOR_LAYERS['parcels'], 'en')[0]
    ('#f4a582', 'Urban residential land')
    >>> legend_entries(VECTOR_LAYERS['health'], 'en')
    [('#e41a1c', 'Health facilities')]
    """
    st = layer.style
    if (name := classify_field(layer)) and st.classes:
        f = layer.field(name)  # each class by what its value means (catalog choice titles)
        return [*((colour, f.choice_title(value, lang)) for value, colour in st.classes),
                (st.fill, OTHER[lang])]
    return [(st.fill, layer.title_vi if lang == "vi" else layer.title)]


def legend_png(layer: Layer | RasterLayer, lang: str = "vi", scale: float = 1.0,
               raster_style: RasterStyle | None = None) -> bytes:
    """The legend of a layer as a PNG (white background, ``scale`` 1 or 2)."""
    from PIL import Image, ImageDraw

    if lang not in OTHER:
        raise InvalidParameter(f"lang must be 'vi' or 'en', got {lang!r}")
    if not 0.5 <= scale <= 4:
        raise InvalidParameter(f"scale must be within 0.5..4, got {scale}")
    s = scale
    title = layer.title_vi if lang == "vi" else layer.title
    title_font, font = _font(round(13 * s), bold=True), _font(round(12 * s))
    pad, line, sw = round(8 * s), round(20 * s), round(18 * s)
    if isinstance(layer, RasterLayer):
        style = raster_style or RasterStyle.parse(layer)
        lo, hi = style.rescale
        labels = [f"{hi:g} {layer.units}", f"{(lo + hi) / 2:g} {layer.units}",
                  f"{lo:g} {layer.units}"]
        ramp_h = round(120 * s)
        width = pad * 3 + sw + max(round(font.getlength(t)) for t in labels)
        width = max(width, round(title_font.getlength(title)) + 2 * pad)
        height = pad * 3 + line + ramp_h
        img = Image.new("RGB", (width, height), (255, 255, 255))
        draw = ImageDraw.Draw(img, "RGBA")  # blends translucent fills
        draw.text((pad, pad), title, font=title_font, fill=(0, 0, 0, 255))
        top = pad * 2 + line
        idx = np.linspace(255, 0, ramp_h).round().astype(np.uint8)
        ramp = np.repeat(colormap_lut(style.colormap)[idx][:, None, :], sw, axis=1)
        ramp[..., 3] = 255
        img.paste(Image.fromarray(ramp, "RGBA").convert("RGB"), (pad, top))
        draw.rectangle((pad, top, pad + sw - 1, top + ramp_h - 1), outline=(80, 80, 80, 255))
        for i, text in enumerate(labels):
            y = top + i * (ramp_h - line) / 2
            draw.text((pad * 2 + sw, y), text, font=font, fill=(0, 0, 0, 255))
    else:
        entries = legend_entries(layer, lang)
        width = pad * 3 + sw + max(round(font.getlength(t)) for _, t in entries)
        width = max(width, round(title_font.getlength(title)) + 2 * pad)
        height = pad * 2 + line * (len(entries) + 1)
        img = Image.new("RGB", (width, height), (255, 255, 255))
        draw = ImageDraw.Draw(img, "RGBA")  # blends translucent fills
        draw.text((pad, pad), title, font=title_font, fill=(0, 0, 0, 255))
        for i, (colour, text) in enumerate(entries, start=1):
            y = pad + i * line
            _swatch(draw, layer, colour, (pad, y + 1, pad + sw, y + sw - 1), s)
            draw.text((pad * 2 + sw, y + 2 * s), text, font=font, fill=(0, 0, 0, 255))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()
