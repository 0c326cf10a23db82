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
from gis.styles import outline_zoom
from gis.tiles import generalize
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


# Cells of the incident clusters, in pixels: 16 × 16 per 256 px tile, as in the vector tiles.
CLUSTER_CELL_PX = 16
# Large polygons with more vertices than this are simplified to half a pixel by PostGIS.
SIMPLIFY_MIN_POINTS = 64
# Wards are read from their per-zoom simplifications up to this zoom, in detail after it.
WARDS_GEN_UNTIL = 15
# Queries of one map of several layers sent to PostGIS at once (Mapnik's asynchronous
# postgis datasource): the database reads the next layers while Mapnik draws the first
# ones. Mapnik's connection pool (shared by a process's render threads) must hold that many
# per thread.
ASYNC_QUERIES = 3
RENDER_THREADS = 4  # images rendered at once by one process (api/maps.py)
POOL_SIZE = ASYNC_QUERIES * RENDER_THREADS


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


@lru_cache(maxsize=256)
def circle_png(fill: str, stroke: str, diameter: float, supersample: int = 8) -> Path:
    """A circle marker image (in :func:`symbol_dir`): ``diameter`` px filled with ``fill``,
    its edge stroked 1 px wide with ``stroke`` (centred on it, as Mapnik strokes its ellipse
    markers), drawn ``supersample`` times larger and reduced by area for anti-aliasing.

    >>> from PIL import Image
    >>> img = Image.open(circle_png("#ff0000", "#ffffff", 8))
    >>> img.size, img.getpixel((5, 5)), img.getpixel((0, 0))[3]
    ((10, 10), (255, 0, 0, 255), 0)
    """
    from PIL import Image, ImageDraw

    side = math.ceil(diameter + 1)
    side += side % 2  # even: centred on the point like Mapnik's ellipse
    k = supersample
    img = Image.new("RGBA", (side * k, side * k), (0, 0, 0, 0))
    c, r = side * k / 2, (diameter + 1) * k / 2
    ImageDraw.Draw(img).ellipse((c - r, c - r, c + r - 1, c + r - 1), fill=fill,
                                outline=stroke, width=k)
    path = symbol_dir() / f"circle-{fill.lstrip('#')}-{stroke.lstrip('#')}-{diameter!r}.png"
    img.resize((side, side), Image.BOX).save(path)
    return path


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


@dataclass(frozen=True)
class ZoomView:
    """How a catalog layer is drawn over a range of zooms (inclusive): in ``detail``, or
    from one of its generalized views (:mod:`gis.tiles.generalize`): land-use ``blocks``,
    point ``clusters``, or ``wards`` simplified for zoom ``bucket``. Each is one Mapnik layer,
    shown between the scales of half a zoom below ``zooms[0]`` and half a zoom above
    ``zooms[1]`` (so maps at any scale, e.g. WMS, get the view of the nearest zoom)."""

    mode: str
    zooms: tuple[int, int]
    bucket: int = 0

    @property
    def scale_range(self) -> tuple[float, float]:
        """(minimum, maximum) scale denominators of the view."""
        return scale_for_zoom(self.zooms[1] + 0.5), scale_for_zoom(self.zooms[0] - 0.5)


def _mode_at(layer: Layer, z: int) -> tuple[str, int]:
    mode = generalize.mode_at(layer, z)
    if mode == "wards":
        return ("wards", generalize.ward_bucket(z)) if z <= WARDS_GEN_UNTIL else ("detail", 0)
    return mode, 0


@lru_cache(maxsize=64)
def zoom_views(layer: Layer) -> tuple[ZoomView, ...]:
    """The layer's views from its first zoom (generalized ones included) to its last.

    >>> from layers import VECTOR_LAYERS
    >>> [(v.mode, v.zooms) for v in zoom_views(VECTOR_LAYERS["parcels"])]
    [('blocks', (11, 13)), ('detail', (14, 22))]
    >>> [(v.mode, v.zooms, v.bucket) for v in zoom_views(VECTOR_LAYERS["wards"])][:2]
    [('wards', (6, 7), 6), ('wards', (8, 9), 8)]
    """
    lo, hi = generalize.zoom_range(layer)
    views: list[ZoomView] = []
    for z in range(lo, hi + 1):
        mode, bucket = _mode_at(layer, z)
        if views and (views[-1].mode, views[-1].bucket) == (mode, bucket):
            views[-1] = ZoomView(mode, (views[-1].zooms[0], z), bucket)
        elif mode != "none":
            views.append(ZoomView(mode, (z, z), bucket))
    return tuple(views)


def source(layer: Layer) -> str:
    """The relation the renderer reads a layer's features from: maps are public outputs, so
    the public view where the layer has one (sensitive locations rounded)."""
    return source_ref(layer)


def _bbox_in(srid: int, target: int) -> str:
    """The map's ``!bbox!`` (in ``srid``) as a geometry in ``target``: clipped to where Huế
    data can be and densified first, so that no bbox fails to transform."""
    if srid == target:
        return "!bbox!"
    w, s, e, n = data_region(srid)
    b = f"ST_Intersection(!bbox!, ST_MakeEnvelope({w!r}, {s!r}, {e!r}, {n!r}, {int(srid)}))"
    seg = f"GREATEST(ST_XMax({b}) - ST_XMin({b}), ST_YMax({b}) - ST_YMin({b}), 1e-9) / 16"
    return f"ST_Transform(ST_Segmentize({b}, {seg}), {int(target)})"


def _in(geom: str, geom_srid: int, srid: int) -> str:
    return geom if geom_srid == srid else f"ST_Transform({geom}, {int(srid)})"


def datasource_sql(layer: Layer, srid: int, stored_3857: bool = False,
                   view: ZoomView | None = None) -> str:
    """The postgis datasource's subquery of one view of a layer: geometry in ``srid``
    (polygons simplified to half a pixel), the style's public fields, rows whose bbox meets
    the map's (``!bbox!``).

    ``stored_3857``: the table has the tiles' stored Web Mercator column ``geom_3857`` (with
    its GiST index), read as is for EPSG:3857 maps instead of transforming every row, and
    for filtering by the map's bbox in other CRSs. Generalized views (``view``) read the
    tables of migration 0005 (blocks, simplified wards) or cluster the points on a grid of
    :data:`CLUSTER_CELL_PX` pixels aligned on the CRS's origin (the same cells in every
    tile and image at a scale). In detail, a dense point layer (one clustered below its
    detail zoom) keeps one point per marker-sized cell: the newest, drawn on top anyway.

    >>> from layers import VECTOR_LAYERS
    >>> sql = datasource_sql(VECTOR_LAYERS["parcels"], 3857, True, zoom_views(
    ...     VECTOR_LAYERS["parcels"])[0])
    >>> "FROM tiles_parcel_blocks AS t WHERE t.geom_3857 && !bbox!" in sql
    True
    """
    mode = view.mode if view is not None else "detail"
    names = [ident(f) for f in dict.fromkeys(
        x for x in (classify_field(layer), label_field(layer)) if x)]
    cols = [f"t.{n}" for n in names]
    if mode == "blocks":
        geom, where = _in("t.geom_3857", 3857, srid), f"t.geom_3857 && {_bbox_in(srid, 3857)}"
        frm, cols = "tiles_parcel_blocks AS t", ["t.land_use"]
    elif mode == "wards":
        geom, where = _in("w.geom_3857", 3857, srid), f"w.geom_3857 && {_bbox_in(srid, 3857)}"
        frm = (f"{source(layer)} AS t JOIN tiles_wards_gen AS w ON w.id = t.id "
               f"AND w.z = {int(view.bucket)}")  # type: ignore[union-attr]
    else:
        g = f"t.{ident(layer.geometry_column)}"
        if stored_3857 and srid == 3857:
            geom, where = "t.geom_3857", "t.geom_3857 && !bbox!"
        else:
            geom, where = _in(g, 4326, srid), f"{g} && {_bbox_in(srid, 4326)}"
        frm = f"{source(layer)} AS t"
    if mode == "clusters":
        cell = f"(!pixel_width! * {CLUSTER_CELL_PX})"
        where = where.replace("!bbox!", f"ST_Expand(!bbox!, {cell})")
        r = layer.style.radius
        return (
            f"(SELECT ST_SetSRID(ST_MakePoint(avg(x), avg(y)), {int(srid)}) AS geom, "
            f"count(*)::int AS count, {2 * r!r} * (1 + 2 * LEAST(count(*) - 1, 99) / 99.0) "
            f"::float8 AS __size FROM (SELECT ST_X(g) AS x, ST_Y(g) AS y FROM (SELECT {geom} AS g "
            f"FROM {frm} WHERE {where}) AS p) AS p GROUP BY floor(x / {cell}), "
            f"floor(y / {cell})) AS q")
    areas = layer.generalize is not None and layer.generalize.mode == "wards"
    if layer.is_polygonal and (mode != "detail" or areas):
        # Only large polygons: generalized views and administrative areas. Small ones
        # (parcels, construction sites) are not worth it: even the test of their size costs
        # a third of reading 76,000 parcels of a zoom-15 WMS image.
        geom = (f"CASE WHEN ST_NPoints({geom}) > {SIMPLIFY_MIN_POINTS} THEN "
                f"ST_Simplify({geom}, !pixel_width! / 2, true) ELSE {geom} END")
    select = f"{geom} AS geom{''.join(', ' + c for c in cols)} FROM {frm} WHERE {where}"
    if mode == "detail" and layer.generalize and layer.generalize.mode == "clusters":
        # Dense points: one marker per marker-sized cell, the newest report's (the one that
        # would be drawn on top), at its own position. The cell is one bigint (column << 32 |
        # row): sorting 170,000 reports of a zoom-15 WMS image by it costs a quarter less.
        cell = f"(!pixel_width! * {2 * layer.style.radius!r})"

        def key(g: str) -> str:
            return (f"(floor(ST_X({g}) / {cell})::bigint << 32) + "
                    f"floor(ST_Y({g}) / {cell})::bigint")

        fid = f"t.{ident(layer.id_column)}"
        marks = layer.generalize.marks
        if marks is not None and stored_3857 and srid == 3857:
            # Thinned ahead (migration 0012): the newest report of each cell of the finest
            # stored grid not coarser than the image's cells (read by key: the cells the
            # image covers), thinned again per image cell; beyond the finest level (zoomed
            # in, few reports in view) the reports themselves.
            level = f"huegis_mark_level({cell})"
            cells = " AND ".join(  # integers, the key's type: a range scan of the key
                f"m.{c} BETWEEN huegis_mark_index(ST_{a}Min(!bbox!), {level}) AND "
                f"huegis_mark_index(ST_{a}Max(!bbox!), {level})"
                for c, a in (("col", "X"), ('"row"', "Y")))
            carried = ''.join(', ' + n for n in names)
            return (
                f"(SELECT DISTINCT ON (p.__cell) p.geom{carried} "
                f"FROM (SELECT {key('m.geom_3857')} AS __cell, m.id AS __id, m.geom_3857 AS geom"
                f"{''.join(', m.' + n for n in names)} "
                f"FROM {ident(marks)} AS m WHERE m.level = {level} AND {cells} "
                f"AND m.geom_3857 && !bbox! "
                f"UNION ALL SELECT {key('t.geom_3857')}, {fid}, t.geom_3857"
                f"{''.join(', t.' + n for n in names)} FROM {frm} "
                f"WHERE {level} IS NULL AND {where}) AS p "
                f"ORDER BY p.__cell, p.__id DESC) AS q")
        return (f"(SELECT DISTINCT ON (__cell) geom{''.join(', ' + n for n in names)} "
                f"FROM (SELECT {key(geom)} AS __cell, {fid} AS __id, {select}) "
                f"AS p ORDER BY __cell, __id DESC) AS q")
    return f"(SELECT {select}) AS q"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: object) -> ET.Element:
    el = ET.SubElement(parent, tag, {k.replace("_", "-"): str(v) for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def _filter_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _draw(rule: ET.Element, layer: Layer, fill: str | None, size: str | None = None,
          outline: bool = True) -> None:
    st = layer.style
    if layer.is_polygonal:
        if fill:
            _sub(rule, "PolygonSymbolizer", fill=fill, fill_opacity=st.fill_opacity)
        if st.stroke and outline:
            _sub(rule, "LineSymbolizer", stroke=st.stroke, stroke_width=st.stroke_width)
    elif layer.geometry_type in ("LineString", "MultiLineString"):
        _sub(rule, "LineSymbolizer", stroke=fill or st.stroke or "#333333",
             stroke_width=st.stroke_width)
    else:
        fill, stroke = fill or "#333333", st.stroke or fill or "#333333"
        if size is None and st.symbol not in SYMBOL_SVG:
            # Fixed-size circles (the thousands of incidents of a WMS image) are blitted from
            # a pre-drawn image: a third cheaper for Mapnik than drawing each vector ellipse.
            _sub(rule, "MarkersSymbolizer", file=str(circle_png(fill, stroke, 2 * st.radius)),
                 allow_overlap="true", placement="point")
            return
        size = size or str(2 * st.radius)
        attrs: dict[str, object] = dict(width=size, height=size, fill=fill, stroke=stroke,
                                        stroke_width=1, allow_overlap="true",
                                        placement="point")
        if st.symbol in SYMBOL_SVG:
            attrs["file"] = str(symbol_dir() / f"{st.symbol}.svg")
        else:
            attrs["marker_type"] = "ellipse"
        _sub(rule, "MarkersSymbolizer", **attrs)


def style_name(layer: Layer, mode: str = "detail") -> str:
    """Name of the Mapnik style of a layer's view (simplified wards share the detail one)."""
    return layer.id if mode in ("detail", "wards") else f"{layer.id}.{mode}"


def label_zoom(layer: Layer) -> int:
    """First zoom of a layer's labels: the catalog's ``label_minzoom``, else three zooms after
    the detail zoom for areas, :data:`POINT_LABEL_ZOOM` for points."""
    if layer.style.label_minzoom is not None:
        return layer.style.label_minzoom
    if layer.is_polygonal:
        return layer.zoom[0] + POLYGON_LABEL_ZOOMS_AFTER_MIN
    return max(layer.zoom[0], POINT_LABEL_ZOOM)


def layer_style(layer: Layer, labels: bool = True, mode: str = "detail") -> ET.Element:
    """The Mapnik ``<Style>`` of a layer's view: a rule per class (``classify``/``classes``),
    a default rule for the rest, and a label rule above the label zoom. Land-use blocks are
    coloured like the parcels, without outlines or labels (at those scales outlines would
    hide the colours), parcels are outlined from :func:`outline_zoom`; clusters are the
    layer's symbol in the layer's colour, larger with their count (as on the web map)."""
    st = layer.style
    style = ET.Element("Style", {"name": style_name(layer, mode)})
    if mode == "clusters":
        _draw(_sub(style, "Rule"), layer, st.fill, size="[__size]")
        return style
    field, first_outline = classify_field(layer), outline_zoom(layer)
    outline = mode != "blocks" and first_outline is None
    if field and st.classes:
        for value, colour in st.classes:
            rule = _sub(style, "Rule")
            _sub(rule, "Filter", f"[{field}] = {_filter_value(value)}")
            _draw(rule, layer, colour, outline=outline)
        rule = _sub(style, "Rule")
        _sub(rule, "ElseFilter")
        _draw(rule, layer, st.fill, outline=outline)
    else:
        _draw(_sub(style, "Rule"), layer, st.fill, outline=outline)
    if mode != "blocks" and first_outline is not None and st.stroke:
        rule = _sub(style, "Rule")  # after the fill of each feature, as in the class rules
        _sub(rule, "MaxScaleDenominator", f"{scale_for_zoom(first_outline) * 1.01:.2f}")
        _sub(rule, "LineSymbolizer", stroke=st.stroke, stroke_width=st.stroke_width)
    label = label_field(layer)
    if labels and label and mode != "blocks":
        rule = _sub(style, "Rule")
        if layer.is_polygonal:
            text = dict(placement="interior", size=11)
        else:
            text = dict(placement="point", size=11, dy=-(st.radius + 7))
        _sub(rule, "MaxScaleDenominator", f"{scale_for_zoom(label_zoom(layer)) * 1.01:.2f}")
        _sub(rule, "TextSymbolizer", f"[{label}]", face_name=FONT_FACE, fill="#222222",
             halo_fill="rgba(255,255,255,0.85)", halo_radius=1.5, halo_rasterizer="fast",
             wrap_width=90,
             margin=4, **text)
    return style


def _labelled(layer: Layer, view: ZoomView | None, labels: bool) -> bool:
    """Whether labels may be drawn in ``view`` (at some of its zooms)."""
    if not labels or label_field(layer) is None:
        return False
    return view is None or view.mode in ("detail", "wards") and view.zooms[1] >= label_zoom(layer)


def _label_split(layer: Layer, view: ZoomView | None, labels: bool) -> list[ZoomView | None]:
    """``view`` cut at the label zoom, so the zooms without labels get a small buffer."""
    lz = label_zoom(layer)
    if view is None or not _labelled(layer, view, labels) or not view.zooms[0] < lz:
        return [view]
    return [ZoomView(view.mode, (view.zooms[0], lz - 1), view.bucket),
            ZoomView(view.mode, (lz, view.zooms[1]), view.bucket)]


def layer_buffer(layer: Layer, view: ZoomView | None, labels: bool, buffer_size: int) -> int:
    """Pixels around the map read for a view: the map's buffer where labels are placed,
    else just enough for outlines and point symbols (at @2x too). Polygons without labels
    need no more: a tile's rows are 2.25 times fewer than with a 64 px buffer.

    >>> from layers import VECTOR_LAYERS
    >>> parcels = VECTOR_LAYERS["parcels"]
    >>> [(v.zooms, layer_buffer(parcels, v, True, 64))
    ...  for v in _label_split(parcels, zoom_views(parcels)[1], True)]
    [((14, 16), 3), ((17, 22), 64)]
    """
    if _labelled(layer, view, labels) and (view is None or view.zooms[0] >= label_zoom(layer)):
        return buffer_size
    if layer.is_polygonal or layer.geometry_type in ("LineString", "MultiLineString"):
        need = math.ceil(2 * layer.style.stroke_width) + 2
    else:
        need = math.ceil(2 * (layer.style.radius * 3 + 1))  # clusters: up to 3 × the radius
    return min(need, buffer_size)


def map_xml(layers: Sequence[Layer], srid: int, conn: PostgisParams, labels: bool = True,
            buffer_size: int = 0, scale_limits: bool = True,
            stored_3857: frozenset[str] = frozenset()) -> str:
    """A whole Mapnik map: ``layers`` drawn in order (first at the bottom) in ``srid``, on a
    transparent background. With ``scale_limits`` each layer is drawn at the scales of its
    zooms only, from its generalized views below its detail zoom (:func:`zoom_views`);
    without, always in detail. ``stored_3857`` names the tables that have a stored
    ``geom_3857`` column."""
    srs = mapnik_srs(srid)
    root = ET.Element("Map", {"srs": srs, "background-color": "transparent",
                              "buffer-size": str(buffer_size)})
    plan = [(layer, zoom_views(layer) if scale_limits else (None,)) for layer in layers]
    for layer, views in plan:
        for mode in dict.fromkeys(v.mode if v else "detail" for v in views):
            if root.find(f"Style[@name='{style_name(layer, mode)}']") is None:
                root.append(layer_style(layer, labels, mode))
    # A one-layer map (a tile) has nothing to read while it draws: synchronous.
    asynchronous = ASYNC_QUERIES if len(layers) > 1 else 1
    for layer, views in plan:
        for view in (p for v in views for p in _label_split(layer, v, labels)):
            attrs = {"name": layer.id if view is None else
                     f"{layer.id}.{view.mode}.{view.zooms[0]}", "srs": srs,
                     "buffer-size": str(layer_buffer(layer, view, labels, buffer_size))}
            if view is not None:
                lo, hi = view.scale_range
                attrs["maximum-scale-denominator"] = f"{hi:.4f}"
                attrs["minimum-scale-denominator"] = f"{lo:.4f}"
            el = _sub(root, "Layer")
            el.attrib.update(attrs)
            _sub(el, "StyleName", style_name(layer, view.mode if view else "detail"))
            ds = _sub(el, "Datasource")
            params = [("type", "postgis"), *conn.items(),
                      ("table", datasource_sql(layer, srid, layer.table in stored_3857, view)),
                      ("geometry_field", "geom"),
                      ("srid", str(int(srid))), ("extent", "-1e12,-1e12,1e12,1e12"),
                      ("estimate_extent", "false"), ("persist_connection", "true"),
                      ("max_async_connection", str(asynchronous)),
                      ("max_size", str(POOL_SIZE)), ("connect_timeout", "5")]
            for name, value in params:
                _sub(ds, "Parameter", value, name=name)
    return ET.tostring(root, encoding="unicode")
