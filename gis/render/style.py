"""Mapnik XML built from the catalog: one style per layer (fills, strokes, categorised colours,
point symbols, Vietnamese labels) over a PostGIS datasource reading public fields only.

Every geometry is transformed to the map's CRS by PostGIS, and Mapnik is told that the layer
and the map share that CRS, so Mapnik itself never reprojects (see :mod:`gis.render.mapnik_env`).
"""

from __future__ import annotations

import math
import tempfile
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from gis.sqlbuild import ident, source_ref
from layers import Layer

# Scale denominator of WebMercatorQuad zoom 0 with 256 px tiles (OGC 0.28 mm pixels).
Z0_SCALE = 559082264.0287178
FONT_FACE = "DejaVu Sans Book"
# Points are labelled from this zoom on; polygons from three zooms after their first one.
POINT_LABEL_ZOOM = 15
POLYGON_LABEL_ZOOMS_AFTER_MIN = 3
# Area where Huế data can be (lon/lat): map bboxes are clipped to it before being transformed
# to EPSG:4326, so a huge bbox in a projected CRS never fails in ST_Transform.
DATA_REGION_LONLAT = (100.0, 5.0, 115.0, 25.0)

# Marker shapes (SVG, 20 × 20), filled and stroked with the layer's colours by Mapnik.
SYMBOL_SVG = {
    "square": '<rect x="3" y="3" width="14" height="14"/>',
    "triangle": '<path d="M10 1.5 L18.5 17.5 L1.5 17.5 Z"/>',
    "cross": '<path d="M7 1 H13 V7 H19 V13 H13 V19 H7 V13 H1 V7 H7 Z"/>',
    "star": '<path d="{}"/>',
}


def scale_for_zoom(z: float) -> float:
    """Scale denominator of a 256 px WebMercatorQuad tile at zoom ``z``.

    >>> round(scale_for_zoom(14))
    34124
    """
    return Z0_SCALE / 2 ** z


def star_points(cx: float = 10, cy: float = 10, r: float = 9.5) -> list[tuple[float, float]]:
    """The ten corners of a five-pointed star (y down), for the SVG marker and the legend."""
    pts = []
    for i in range(10):
        rr = r if i % 2 == 0 else r * 0.42
        a = math.pi / 2 + i * math.pi / 5
        pts.append((cx + rr * math.cos(a), cy - rr * math.sin(a)))
    return pts


def _star_path() -> str:
    return "M" + " L".join(f"{x:.2f} {y:.2f}" for x, y in star_points()) + " Z"


@lru_cache(maxsize=1)
def symbol_dir() -> Path:
    """Directory of the marker SVGs, written once per process (they are generated, not data)."""
    d = Path(tempfile.mkdtemp(prefix="huegis-symbols-"))
    for name, body in SYMBOL_SVG.items():
        if name == "star":
            body = body.format(_star_path())
        (d / f"{name}.svg").write_text(
            '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20" '
            f'viewBox="0 0 20 20">{body}</svg>')
    return d


@dataclass(frozen=True)
class PostgisParams:
    """Connection parameters of Mapnik's postgis datasource, parsed from a libpq URL
    (Unix-socket URLs like ``postgresql://postgres@/db?host=/path&port=5439`` included).

    >>> p = PostgisParams.from_dsn("postgresql://postgres@/db?host=/var/run&port=5439")
    >>> (p.host, p.port, p.dbname, p.user)
    ('/var/run', '5439', 'db', 'postgres')
    >>> PostgisParams.from_dsn("postgresql://u:secret@db.example:5432/gis").password
    'secret'
    """

    dbname: str
    host: str = ""
    port: str = ""
    user: str = ""
    password: str = ""

    @classmethod
    def from_dsn(cls, dsn: str) -> PostgisParams:
        d = conninfo_to_dict(dsn)
        return cls(dbname=str(d.get("dbname") or ""), host=str(d.get("host") or ""),
                   port=str(d.get("port") or ""), user=str(d.get("user") or ""),
                   password=str(d.get("password") or ""))

    def items(self) -> list[tuple[str, str]]:
        return [(k, v) for k, v in (("host", self.host), ("port", self.port),
                                    ("dbname", self.dbname), ("user", self.user),
                                    ("password", self.password)) if v]


@lru_cache(maxsize=64)
def mapnik_srs(srid: int) -> str:
    """The CRS string given to Mapnik: its built-in ``epsg:4326``/``epsg:3857``, else a PROJ
    string (parsed without PROJ's database; only used as a label since Mapnik never
    reprojects here)."""
    if srid in (4326, 3857):
        return f"epsg:{srid}"
    from pyproj import CRS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = CRS.from_epsg(srid).to_proj4()
    return text.replace(" +type=crs", "")


@lru_cache(maxsize=64)
def data_region(srid: int) -> tuple[float, float, float, float]:
    """:data:`DATA_REGION_LONLAT` in ``srid`` (its bounding box)."""
    if srid == 4326:
        return DATA_REGION_LONLAT
    from pyproj import Transformer

    t = Transformer.from_crs(4326, srid, always_xy=True)
    return t.transform_bounds(*DATA_REGION_LONLAT, densify_pts=21)


def label_field(layer: Layer) -> str | None:
    """The style's label field if it is public (private fields are never drawn)."""
    name = layer.style.label
    return name if name and layer.has_field(name) and layer.field(name).public else None


def classify_field(layer: Layer) -> str | None:
    name = layer.style.classify
    return name if name and layer.has_field(name) and layer.field(name).public else None


def datasource_sql(layer: Layer, srid: int, stored_3857: bool = False) -> str:
    """The postgis datasource's subquery: geometry in ``srid`` (polygons simplified to half a
    pixel), the style's public fields, rows whose bbox meets the map's (``!bbox!``).

    ``stored_3857``: the table has the tiles' stored Web Mercator column ``geom_3857`` (with
    its GiST index), used as is for EPSG:3857 maps instead of transforming every row.
    """
    g = f"t.{ident(layer.geometry_column)}"
    if srid == 3857 and stored_3857:
        geom = g = "t.geom_3857"
    else:
        geom = g if srid == 4326 else f"ST_Transform({g}, {int(srid)})"
    if layer.is_polygonal:
        geom = f"ST_Simplify({geom}, !pixel_width! / 2, true)"
    cols = [f"t.{ident(f)}" for f in dict.fromkeys(
        x for x in (classify_field(layer), label_field(layer)) if x)]
    if srid == 4326 or g == "t.geom_3857":
        bbox = "!bbox!"
    else:
        w, s, e, n = data_region(srid)
        b = f"ST_Intersection(!bbox!, ST_MakeEnvelope({w!r}, {s!r}, {e!r}, {n!r}, {int(srid)}))"
        seg = f"GREATEST(ST_XMax({b}) - ST_XMin({b}), ST_YMax({b}) - ST_YMin({b}), 1e-9) / 16"
        bbox = f"ST_Transform(ST_Segmentize({b}, {seg}), 4326)"
    return (f"(SELECT {geom} AS geom{''.join(', ' + c for c in cols)} "
            f"FROM {source_ref(layer)} AS t WHERE {g} && {bbox}) AS q")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: object) -> ET.Element:
    el = ET.SubElement(parent, tag, {k.replace("_", "-"): str(v) for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def _filter_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _draw(rule: ET.Element, layer: Layer, fill: str | None) -> None:
    st = layer.style
    if layer.is_polygonal:
        if fill:
            _sub(rule, "PolygonSymbolizer", fill=fill, fill_opacity=st.fill_opacity)
        if st.stroke:
            _sub(rule, "LineSymbolizer", stroke=st.stroke, stroke_width=st.stroke_width)
    elif layer.geometry_type in ("LineString", "MultiLineString"):
        _sub(rule, "LineSymbolizer", stroke=fill or st.stroke or "#333333",
             stroke_width=st.stroke_width)
    else:
        size = 2 * st.radius
        attrs: dict[str, object] = dict(width=size, height=size, fill=fill or "#333333",
                                        stroke=st.stroke or fill or "#333333",
                                        stroke_width=1, allow_overlap="true",
                                        placement="point")
        if st.symbol in SYMBOL_SVG:
            attrs["file"] = str(symbol_dir() / f"{st.symbol}.svg")
        else:
            attrs["marker_type"] = "ellipse"
        _sub(rule, "MarkersSymbolizer", **attrs)


def layer_style(layer: Layer, labels: bool = True) -> ET.Element:
    """The Mapnik ``<Style>`` of a layer: a rule per class (``classify``/``classes``), a
    default rule for the rest, and a label rule above the label zoom."""
    st = layer.style
    style = ET.Element("Style", {"name": layer.id})
    field = classify_field(layer)
    if field and st.classes:
        for value, colour in st.classes:
            rule = _sub(style, "Rule")
            _sub(rule, "Filter", f"[{field}] = {_filter_value(value)}")
            _draw(rule, layer, colour)
        rule = _sub(style, "Rule")
        _sub(rule, "ElseFilter")
        _draw(rule, layer, st.fill)
    else:
        _draw(_sub(style, "Rule"), layer, st.fill)
    label = label_field(layer)
    if labels and label:
        rule = _sub(style, "Rule")
        if layer.is_polygonal:
            zoom = layer.zoom[0] + POLYGON_LABEL_ZOOMS_AFTER_MIN
            text = dict(placement="interior", size=11)
        else:
            zoom = max(layer.zoom[0], POINT_LABEL_ZOOM)
            text = dict(placement="point", size=11, dy=-(st.radius + 7))
        _sub(rule, "MaxScaleDenominator", f"{scale_for_zoom(zoom) * 1.01:.2f}")
        _sub(rule, "TextSymbolizer", f"[{label}]", face_name=FONT_FACE, fill="#222222",
             halo_fill="rgba(255,255,255,0.85)", halo_radius=1.5, wrap_width=90,
             margin=4, **text)
    return style


def map_xml(layers: Sequence[Layer], srid: int, conn: PostgisParams, labels: bool = True,
            buffer_size: int = 0, scale_limits: bool = True,
            stored_3857: frozenset[str] = frozenset()) -> str:
    """A whole Mapnik map: ``layers`` drawn in order (first at the bottom) in ``srid``, on a
    transparent background. ``scale_limits`` hides a layer outside its catalog zoom range;
    ``stored_3857`` names the tables that have a stored ``geom_3857`` column."""
    srs = mapnik_srs(srid)
    root = ET.Element("Map", {"srs": srs, "background-color": "transparent",
                              "buffer-size": str(buffer_size)})
    for layer in layers:
        root.append(layer_style(layer, labels))
    for layer in layers:
        attrs = {"name": layer.id, "srs": srs}
        if scale_limits:
            attrs["maximum-scale-denominator"] = f"{scale_for_zoom(layer.zoom[0]) * 1.01:.2f}"
            attrs["minimum-scale-denominator"] = f"{scale_for_zoom(layer.zoom[1] + 1):.4f}"
        el = _sub(root, "Layer", **{})
        el.attrib.update(attrs)
        _sub(el, "StyleName", layer.id)
        ds = _sub(el, "Datasource")
        params = [("type", "postgis"), *conn.items(),
                  ("table", datasource_sql(layer, srid, layer.table in stored_3857)),
                  ("geometry_field", "geom"),
                  ("srid", str(int(srid))), ("extent", "-1e12,-1e12,1e12,1e12"),
                  ("estimate_extent", "false"), ("persist_connection", "true"),
                  ("max_size", "4"), ("connect_timeout", "5")]
        for name, value in params:
            _sub(ds, "Parameter", value, name=name)
    return ET.tostring(root, encoding="unicode")
