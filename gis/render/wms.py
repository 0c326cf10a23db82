"""WMS 1.3.0 on the renderer: request parsing, the capabilities document, feature info and
service exceptions. No HTTP here; ``api/wms.py`` routes requests to these functions.

Axis order follows WMS 1.3.0: in ``BBOX`` the axes come in the order the CRS defines, so
EPSG:4326 is ``minlat,minlon,maxlat,maxlon`` while CRS:84 is lon/lat (1.1.1 requests, with
``SRS``, are always x/y).
"""

from __future__ import annotations

import html
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gis.crs import parse_bbox
from gis.errors import HueGISError, ImageTooLarge, InvalidBBox, LayerNotFound, UnknownCRS
from gis.render.engine import MAX_SIDE, MapView, Output, check_size, parse_color
from gis.render.style import zoom_views
from gis.render.views import CRSRef, transform_bbox
from gis.sqlbuild import ident, properties_json, source_ref
from layers import CATALOG, Layer, RasterLayer

WMS_NS = "http://www.opengis.net/wms"
XLINK_NS = "http://www.w3.org/1999/xlink"
SLD_NS = "http://www.opengis.net/sld"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
OGC_NS = "http://www.opengis.net/ogc"
CAPABILITIES_CRS = ("EPSG:3857", "EPSG:4326", "CRS:84", "EPSG:9214", "EPSG:3405")
MAP_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "png": "png", "jpeg": "jpeg",
               "image/png; mode=32bit": "png", "image/png8": "png", "jpg": "jpeg"}
INFO_FORMATS = ("application/json", "application/geo+json", "text/html", "text/plain")
LAYER_LIMIT = 16
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
MAX_FEATURE_COUNT = 50
# Pixels around the clicked one searched by GetFeatureInfo (symbols are about this big).
INFO_TOLERANCE_PX = 6


class WMSException(HueGISError):
    """A WMS service exception: ``code`` is the WMS exception code, ``locator`` the parameter."""

    status = 400

    def __init__(self, code: str, description: str, locator: str | None = None,
                 status: int = 400) -> None:
        super().__init__(description)
        self.code = code
        self.locator = locator
        self.status = status


def as_wms_exception(exc: HueGISError) -> WMSException:
    """Any domain error as the WMS exception it means."""
    if isinstance(exc, WMSException):
        return exc
    if isinstance(exc, UnknownCRS):
        return WMSException("InvalidCRS", exc.description, "CRS")
    if isinstance(exc, LayerNotFound):
        return WMSException("LayerNotDefined", exc.description, "LAYERS")
    if isinstance(exc, InvalidBBox):
        return WMSException("InvalidParameterValue", exc.description, "BBOX")
    if isinstance(exc, ImageTooLarge):
        return WMSException("InvalidParameterValue", exc.description, "WIDTH")
    if exc.status >= 500:
        return WMSException("NoApplicableCode", exc.description, None, exc.status)
    return WMSException("InvalidParameterValue", exc.description)


def exception_xml(exc: WMSException) -> str:
    """The ``ServiceExceptionReport`` document of an exception.

    >>> text = exception_xml(WMSException("LayerNotDefined", "no layer 'x'", "LAYERS"))
    >>> '<ServiceException code="LayerNotDefined" locator="LAYERS">no layer' in text
    True
    """
    root = ET.Element("ServiceExceptionReport", {
        "version": "1.3.0", "xmlns": OGC_NS, "xmlns:xsi": XSI_NS,
        "xsi:schemaLocation": f"{OGC_NS} http://schemas.opengis.net/wms/1.3.0/"
                              "exceptions_1_3_0.xsd"})
    attrs = {"code": exc.code}
    if exc.locator:
        attrs["locator"] = exc.locator
    ET.SubElement(root, "ServiceException", attrs).text = exc.description
    return XML_DECLARATION + ET.tostring(root, encoding="unicode")


# ------------------------------------------------------------------------- parameters
class Params:
    """Query parameters with case-insensitive names (as WMS wants)."""

    def __init__(self, items: Sequence[tuple[str, str]] | Mapping[str, str]) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self._d = {k.upper(): v for k, v in pairs}

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._d.get(name, default)

    def require(self, name: str) -> str:
        v = self._d.get(name)
        if v is None or v.strip() == "":
            raise WMSException("MissingParameterValue", f"parameter {name} is required", name)
        return v.strip()

    def integer(self, name: str, lo: int, hi: int, default: int | None = None) -> int:
        text = self._d.get(name)
        if text is None or text.strip() == "":
            if default is not None:
                return default
            raise WMSException("MissingParameterValue", f"parameter {name} is required", name)
        try:
            value = int(text)
        except ValueError:
            raise WMSException("InvalidParameterValue", f"{name} must be an integer, got "
                               f"{text!r}", name) from None
        if not lo <= value <= hi:
            code = "InvalidPoint" if name in ("I", "J", "X", "Y") else "InvalidParameterValue"
            raise WMSException(code, f"{name} must be within {lo}..{hi}, got {value}", name)
        return value


def public_layer(name: str) -> Layer | RasterLayer:
    layer = CATALOG.get(name.strip())
    if layer is None:
        raise WMSException("LayerNotDefined", f"no layer {name!r}; layers: "
                           f"{', '.join(CATALOG)}", "LAYERS")
    return layer


def parse_layers(p: Params, name: str = "LAYERS") -> list[Layer | RasterLayer]:
    names = [n for n in p.require(name).split(",") if n.strip()]
    if not names:
        raise WMSException("MissingParameterValue", f"parameter {name} is required", name)
    if len(names) > LAYER_LIMIT:
        raise WMSException("InvalidParameterValue", f"at most {LAYER_LIMIT} layers in one "
                           "request", name)
    layers = [public_layer(n) for n in names]
    styles = p.get("STYLES")
    if styles:
        for s in styles.split(","):
            if s.strip() not in ("", "default"):
                raise WMSException("StyleNotDefined", f"unknown style {s!r}: each layer has "
                                   "one style, 'default'", "STYLES")
    return layers


@dataclass(frozen=True)
class MapRequest:
    """A parsed GetMap (or the map part of a GetFeatureInfo)."""

    layers: list[Layer | RasterLayer]
    view: MapView
    output: Output
    crs: CRSRef


def parse_map_request(p: Params, need_format: bool = True) -> MapRequest:
    """Parse the GetMap parameters (WMS 1.3.0 ``CRS``; 1.1.x ``SRS`` with x/y bboxes)."""
    version = (p.get("VERSION") or "1.3.0").strip()
    layers = parse_layers(p)
    if version.startswith("1.1"):
        crs_text = p.require("SRS")
        try:
            ref = CRSRef.parse(crs_text)
        except UnknownCRS as exc:
            raise WMSException("InvalidSRS", exc.description, "SRS") from None
        crs = CRSRef(ref.srid, False)
    else:
        crs_text = p.require("CRS")
        try:
            crs = CRSRef.parse(crs_text)
        except UnknownCRS as exc:
            raise WMSException("InvalidCRS", exc.description, "CRS") from None
    try:
        bbox = crs.xy_bbox(parse_bbox(p.require("BBOX")))
    except InvalidBBox as exc:
        raise WMSException("InvalidParameterValue", exc.description, "BBOX") from None
    width = p.integer("WIDTH", 1, MAX_SIDE)
    height = p.integer("HEIGHT", 1, MAX_SIDE)
    try:
        check_size(width, height)
    except ImageTooLarge as exc:
        raise WMSException("InvalidParameterValue", exc.description, "WIDTH") from None
    fmt_text = (p.require("FORMAT") if need_format else p.get("FORMAT") or "image/png")
    fmt = MAP_FORMATS.get(fmt_text.strip().lower())
    if fmt is None:
        raise WMSException("InvalidFormat", f"unsupported FORMAT {fmt_text!r}; use image/png "
                           "or image/jpeg", "FORMAT")
    transparent_text = (p.get("TRANSPARENT") or "FALSE").strip().upper()
    if transparent_text not in ("TRUE", "FALSE"):
        raise WMSException("InvalidParameterValue", "TRANSPARENT must be TRUE or FALSE",
                           "TRANSPARENT")
    try:
        bg = parse_color(p.get("BGCOLOR"))
    except HueGISError as exc:
        raise WMSException("InvalidParameterValue", exc.description, "BGCOLOR") from None
    output = Output(fmt, fmt == "png" and transparent_text == "TRUE", bg)
    return MapRequest(layers, MapView(bbox, crs.srid, width, height), output, crs)


@dataclass(frozen=True)
class InfoRequest:
    """A parsed GetFeatureInfo: the map, the queried layers, the info format, the feature
    count per layer, the pixel's centre (image coordinates) and its lon/lat."""

    map: MapRequest
    layers: list[Layer | RasterLayer]
    format: str
    count: int
    i: float
    j: float
    lon: float
    lat: float


def parse_info_request(p: Params) -> InfoRequest:
    """Parse GetFeatureInfo (``I``/``J`` in 1.3.0, ``X``/``Y`` in 1.1.x)."""
    req = parse_map_request(p, need_format=False)
    queried = parse_layers(p, "QUERY_LAYERS")
    ids = {la.id for la in req.layers}
    for layer in queried:
        if layer.id not in ids:
            raise WMSException("LayerNotQueryable", f"{layer.id!r} is not among LAYERS",
                               "QUERY_LAYERS")
    fmt = (p.get("INFO_FORMAT") or "text/plain").strip().lower()
    if fmt not in INFO_FORMATS:
        raise WMSException("InvalidFormat", f"unsupported INFO_FORMAT {fmt!r}; use "
                           f"{', '.join(INFO_FORMATS)}", "INFO_FORMAT")
    version = (p.get("VERSION") or "1.3.0").strip()
    iname, jname = ("X", "Y") if version.startswith("1.1") else ("I", "J")
    i = p.integer(iname, 0, req.view.width - 1)
    j = p.integer(jname, 0, req.view.height - 1)
    count = p.integer("FEATURE_COUNT", 1, MAX_FEATURE_COUNT, default=1)
    lon, lat = pixel_lonlat(req.view, i + 0.5, j + 0.5)
    return InfoRequest(req, queried, fmt, count, i + 0.5, j + 0.5, lon, lat)


def pixel_lonlat(view: MapView, px: float, py: float) -> tuple[float, float]:
    """Lon/lat of image position (px, py) (pixels from the top-left corner) of a view."""
    w, s, e, n = view.bbox
    x = w + px * (e - w) / view.width
    y = n - py * (n - s) / view.height
    if view.srid == 4326:
        return x, y
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(view.srid, 4326, always_xy=True).transform(x, y)
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise WMSException("InvalidPoint", "the point is outside the CRS's domain", "I")
    return lon, lat


def search_box(view: MapView, i: float, j: float, tolerance_px: float
               ) -> tuple[float, float, float, float]:
    """Lon/lat bbox of the pixels within ``tolerance_px`` of pixel centre (i, j)."""
    corners = [pixel_lonlat(view, i + dx, j + dy) for dx in (-tolerance_px, tolerance_px)
               for dy in (-tolerance_px, tolerance_px)]
    lons, lats = [c[0] for c in corners], [c[1] for c in corners]
    return (min(lons), min(lats), max(lons), max(lats))


def feature_info_sql(layer: Layer) -> str:
    """Features of ``layer`` meeting lon/lat box ``$1..$4``, nearest to point ``($5, $6)``
    first (metres, on the geography), at most ``$7``; public fields only."""
    g = f"t.{ident(layer.geometry_column)}"
    env = "ST_MakeEnvelope($1, $2, $3, $4, 4326)"
    return (f"SELECT t.{ident(layer.id_column)}::text AS id, "
            f"{properties_json(layer, 't')}::text AS props, ST_AsGeoJSON({g}, 7) AS geom "
            f"FROM {source_ref(layer)} AS t WHERE {g} && {env} AND ST_Intersects({g}, {env}) "
            f"ORDER BY ST_Distance({g}::geography, "
            "ST_SetSRID(ST_MakePoint($5, $6), 4326)::geography) LIMIT $7")


def feature(layer_id: str, fid: str | None, props: dict, geometry: dict | None) -> dict:
    return {"type": "Feature", "id": fid, "collection": layer_id, "geometry": geometry,
            "properties": props}


def format_info(features: list[dict], fmt: str) -> tuple[str, str]:
    """GetFeatureInfo body and media type: GeoJSON, an HTML table per layer, or plain text."""
    if fmt in ("application/json", "application/geo+json"):
        body = json.dumps({"type": "FeatureCollection", "features": features},
                          ensure_ascii=False, default=str)
        return body, fmt
    if fmt == "text/html":
        parts = ["<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Feature info"
                 "</title></head><body>"]
        if not features:
            parts.append("<p>No feature here.</p>")
        for f in features:
            layer = CATALOG[f["collection"]]
            parts.append(f"<table><caption>{html.escape(layer.title)} — "
                         f"{html.escape(layer.title_vi)} {html.escape(str(f['id'] or ''))}"
                         "</caption>")
            for k, v in f["properties"].items():
                title = (f"{layer.field(k).title_in('vi')} · {layer.field(k).title_in('en')}"
                         if isinstance(layer, Layer) and layer.has_field(k) else k)
                parts.append(f'<tr><th title="{html.escape(k)}">{html.escape(title)}</th><td>'
                             f"{html.escape('' if v is None else str(v))}</td></tr>")
            parts.append("</table>")
        parts.append("</body></html>")
        return "".join(parts), "text/html; charset=utf-8"
    lines = []
    for f in features:
        lines.append(f"Layer '{f['collection']}' feature {f['id']}:")
        lines.extend(f"  {k} = {'' if v is None else v}" for k, v in f["properties"].items())
    return ("\n".join(lines) if lines else "no feature here") + "\n", "text/plain; charset=utf-8"


# ------------------------------------------------------------------------- capabilities
def _q(tag: str, ns: str = WMS_NS) -> str:
    return f"{{{ns}}}{tag}"


def _el(parent: ET.Element, tag: str, text: str | None = None, ns: str = WMS_NS,
        **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, _q(tag, ns), attrs)
    if text is not None:
        el.text = text
    return el


def _online(parent: ET.Element, href: str) -> None:
    _el(parent, "OnlineResource", None, **{_q("type", XLINK_NS): "simple",
                                           _q("href", XLINK_NS): href})


def _operation(parent: ET.Element, tag: str, formats: Sequence[str], url: str,
               ns: str = WMS_NS) -> None:
    op = _el(parent, tag, ns=ns)
    for f in formats:
        _el(op, "Format", f)
    get = _el(_el(_el(op, "DCPType"), "HTTP"), "Get")
    _online(get, url + "?")


def _bboxes(el: ET.Element, lonlat: tuple[float, float, float, float]) -> None:
    w, s, e, n = lonlat
    geo = _el(el, "EX_GeographicBoundingBox")
    for tag, v in (("westBoundLongitude", w), ("eastBoundLongitude", e),
                   ("southBoundLatitude", s), ("northBoundLatitude", n)):
        _el(geo, tag, f"{v:.6f}")
    for name in CAPABILITIES_CRS:
        crs = CRSRef.parse(name)
        x0, y0, x1, y1 = transform_bbox(lonlat, 4326, crs.srid)
        if crs.north_first:
            x0, y0, x1, y1 = y0, x0, y1, x1
        digits = 6 if crs.srid == 4326 else 2
        _el(el, "BoundingBox", None, CRS=name, minx=f"{x0:.{digits}f}", miny=f"{y0:.{digits}f}",
            maxx=f"{x1:.{digits}f}", maxy=f"{y1:.{digits}f}")


def capabilities_xml(url: str, extents: Mapping[str, tuple[float, float, float, float]],
                     legend_sizes: Mapping[str, tuple[int, int]], attribution: str) -> str:
    """The GetCapabilities document: every catalog layer with its title, abstract, keywords,
    bounding boxes (lon/lat ``extents``), scale range and legend URL; ``url`` is the service's
    own address (``…/wms``)."""
    ET.register_namespace("", WMS_NS)
    ET.register_namespace("xlink", XLINK_NS)
    ET.register_namespace("sld", SLD_NS)
    ET.register_namespace("xsi", XSI_NS)
    root = ET.Element(_q("WMS_Capabilities"), {
        "version": "1.3.0", "updateSequence": "0",
        _q("schemaLocation", XSI_NS): f"{WMS_NS} http://schemas.opengis.net/wms/1.3.0/"
        f"capabilities_1_3_0.xsd {SLD_NS} http://schemas.opengis.net/sld/1.1.0/"
        "sld_capabilities.xsd"})
    service = _el(root, "Service")
    _el(service, "Name", "WMS")
    _el(service, "Title", "Huế GIS — bản đồ thành phố Huế")
    _el(service, "Abstract", "Thematic layers of Huế City (parcels, construction, facilities, "
        "wards, citizen reports, flood depth, elevation) rendered from the Huế GIS catalog.")
    kw = _el(service, "KeywordList")
    for k in ("Huế", "GIS", "WMS", "Vietnam"):
        _el(kw, "Keyword", k)
    _online(service, url)
    _el(service, "Fees", "none")
    _el(service, "AccessConstraints", attribution)
    _el(service, "LayerLimit", str(LAYER_LIMIT))
    _el(service, "MaxWidth", str(MAX_SIDE))
    _el(service, "MaxHeight", str(MAX_SIDE))
    cap = _el(root, "Capability")
    req = _el(cap, "Request")
    _operation(req, "GetCapabilities", ["text/xml"], url)
    _operation(req, "GetMap", ["image/png", "image/jpeg"], url)
    _operation(req, "GetFeatureInfo", list(INFO_FORMATS), url)
    _operation(req, "GetLegendGraphic", ["image/png"], url, ns=SLD_NS)
    _el(_el(cap, "Exception"), "Format", "XML")
    top = _el(cap, "Layer")
    _el(top, "Title", "Huế GIS")
    _el(top, "Abstract", attribution)
    for name in CAPABILITIES_CRS:
        _el(top, "CRS", name)
    everything = [e for e in extents.values()]
    if everything:
        _bboxes(top, (min(e[0] for e in everything), min(e[1] for e in everything),
                      max(e[2] for e in everything), max(e[3] for e in everything)))
    for layer in CATALOG.values():
        el = _el(top, "Layer", None, queryable="1", opaque="0")
        _el(el, "Name", layer.id)
        _el(el, "Title", f"{layer.title} — {layer.title_vi}")
        _el(el, "Abstract", layer.description)
        if layer.keywords:
            kl = _el(el, "KeywordList")
            for k in layer.keywords:
                _el(kl, "Keyword", k)
        if layer.id in extents:
            _bboxes(el, extents[layer.id])
        style = _el(el, "Style")
        _el(style, "Name", "default")
        _el(style, "Title", "Catalog style")
        w, h = legend_sizes.get(layer.id, (120, 60))
        legend = _el(style, "LegendURL", None, width=str(w), height=str(h))
        _el(legend, "Format", "image/png")
        _online(legend, f"{url}?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetLegendGraphic&"
                        f"LAYER={layer.id}&FORMAT=image/png&STYLE=default")
        if isinstance(layer, Layer):  # generalized views included (land-use blocks…)
            views = zoom_views(layer)
            _el(el, "MinScaleDenominator", f"{views[-1].scale_range[0]:.2f}")
            _el(el, "MaxScaleDenominator", f"{views[0].scale_range[1]:.2f}")
    return XML_DECLARATION + ET.tostring(root, encoding="unicode")
