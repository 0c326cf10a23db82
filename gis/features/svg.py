"""A small inline SVG drawing of GeoJSON geometries, for the HTML pages (no map library, no
CDN): longitude/latitude scaled to the box with the latitude's cosine, north up."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from html import escape

Coords = list[tuple[float, float]]


def _rings(geometry: dict) -> Iterator[tuple[str, list[Coords]]]:
    """(kind, list of coordinate lists) of each part: kind is point, line or polygon."""
    t, c = geometry.get("type"), geometry.get("coordinates")
    if t == "Point":
        yield "point", [[tuple(c[:2])]]
    elif t == "MultiPoint":
        for p in c:
            yield "point", [[tuple(p[:2])]]
    elif t == "LineString":
        yield "line", [[tuple(p[:2]) for p in c]]
    elif t == "MultiLineString":
        for line in c:
            yield "line", [[tuple(p[:2]) for p in line]]
    elif t == "Polygon":
        yield "polygon", [[tuple(p[:2]) for p in ring] for ring in c]
    elif t == "MultiPolygon":
        for poly in c:
            yield "polygon", [[tuple(p[:2]) for p in ring] for ring in poly]


def svg_map(features: Iterable[dict], width: int = 480, height: int = 320,
            link: str | None = None) -> str:
    """An ``<svg>`` drawing the features' geometries (CRS84 lon/lat), or ``''`` if none.

    ``link`` is a format string with ``{id}``: each feature becomes a link to its page.

    >>> svg = svg_map([{"id": 1, "geometry": {"type": "Point", "coordinates": [107.58, 16.47]}}])
    >>> svg.startswith('<svg') and '<circle' in svg
    True
    """
    parts = [(f, kind, rings) for f in features if f.get("geometry")
             for kind, rings in _rings(f["geometry"])]
    xs = [x for _, _, rings in parts for r in rings for x, _ in r]
    ys = [y for _, _, rings in parts for r in rings for _, y in r]
    if not xs:
        return ""
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    kx = math.cos(math.radians((y0 + y1) / 2))
    span = max((x1 - x0) * kx, y1 - y0, 1e-6)
    pad = 12
    scale = min(width - 2 * pad, height - 2 * pad) / span

    def pt(x: float, y: float) -> str:
        return f"{pad + (x - x0) * kx * scale:.1f},{height - pad - (y - y0) * scale:.1f}"

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="map" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="map of the features">',
           f'<rect width="{width}" height="{height}" fill="#eef3f7"/>']
    for f, kind, rings in parts:
        title = f"<title>{escape(str(f.get('id', '')))}</title>"
        if kind == "point":
            (x, y), = rings[0]
            shape = f'<circle cx="{pt(x, y).split(",")[0]}" cy="{pt(x, y).split(",")[1]}" ' \
                    f'r="4" fill="#e31a1c" stroke="#fff">{title}</circle>'
        elif kind == "line":
            shape = (f'<polyline points="{" ".join(pt(x, y) for x, y in rings[0])}" '
                     f'fill="none" stroke="#1f78b4" stroke-width="2">{title}</polyline>')
        else:
            d = " ".join("M" + " L".join(pt(x, y) for x, y in ring) + " Z" for ring in rings)
            shape = (f'<path d="{d}" fill="#f2d49b" fill-opacity="0.7" stroke="#a0522d" '
                     f'fill-rule="evenodd">{title}</path>')
        if link and f.get("id") is not None:
            shape = f'<a href="{escape(link.format(id=f["id"]))}">{shape}</a>'
        out.append(shape)
    out.append("</svg>")
    return "".join(out)
