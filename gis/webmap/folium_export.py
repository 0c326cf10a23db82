"""Standalone HTML maps (folium/Leaflet) of a layer or of any GeoJSON, styled from the catalog:
categorised colours, a legend and popups with the fields the caller may read."""

from __future__ import annotations

import html
from typing import Any

import folium
import psycopg

from gis.errors import InvalidBBox
from gis.sqlbuild import ident, properties_json, source_ref
from layers import ATTRIBUTION, Layer

HUE_CENTER_LATLON = (16.469, 107.5775)


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """``W,S,E,N`` in CRS84, or ``None``.

    >>> parse_bbox("107.56,16.44,107.62,16.48")
    (107.56, 16.44, 107.62, 16.48)
    >>> parse_bbox("1,2,3")
    Traceback (most recent call last):
    ...
    gis.errors.InvalidBBox: bbox must be W,S,E,N (4 numbers, W<E, S<N, in degrees), not '1,2,3'
    """
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if (len(values) != 4 or not (-180 <= values[0] < values[2] <= 180)
            or not (-90 <= values[1] < values[3] <= 90)):
        raise InvalidBBox(f"bbox must be W,S,E,N (4 numbers, W<E, S<N, in degrees), "
                          f"not {text!r}")
    return values  # type: ignore[return-value]


def layer_geojson(conn: psycopg.Connection, layer: Layer,
                  bbox: tuple[float, float, float, float] | None = None, limit: int = 5_000,
                  principal: Any = None) -> dict[str, Any]:
    """The layer's features (fields the ``principal`` may read; public ones by default) as a
    GeoJSON FeatureCollection, within ``bbox`` and at most ``limit`` of them."""
    g = ident(layer.geometry_column)
    where, params = "", []
    if bbox is not None:
        where = f"WHERE t.{g} && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
        params = list(bbox)
    sql = (
        "SELECT json_build_object('type', 'FeatureCollection', 'features', "
        "COALESCE(json_agg(json_build_object('type', 'Feature', 'id', t.__id, "
        f"'geometry', ST_AsGeoJSON(t.{g}, 6)::json, "
        f"'properties', {properties_json(layer, 't', principal=principal)})), '[]'::json)) "
        f"FROM (SELECT t.*, t.{ident(layer.id_column)} AS __id "
        f"FROM {source_ref(layer, principal)} AS t "
        f"{where} ORDER BY t.{ident(layer.id_column)} LIMIT %s) AS t"
    )
    row = conn.execute(sql, [*params, limit]).fetchone()
    return row[0]


def _colour(layer: Layer, props: dict[str, Any]) -> str:
    s = layer.style
    if s.classify:
        for value, colour in s.classes:
            if props.get(s.classify) == value:
                return colour
    return s.fill or s.stroke or "#888888"


def legend_html(layer: Layer, lang: str = "vi") -> str:
    """An HTML legend box of the layer's colours (from the catalog), titled in ``lang``.

    >>> from layers import VECTOR_LAYERS
    >>> "ODT – Đất ở tại đô thị" in legend_html(VECTOR_LAYERS["parcels"])
    True
    """
    s = layer.style
    title = layer.title_vi if lang == "vi" else layer.title
    rows = [(title, s.fill or s.stroke or "#888")]
    if s.classify:
        f = layer.field(s.classify)
        rows = [(f"{v} – {f.choice_title(v, lang)}" if f.choice_title(v, lang) != v else v, c)
                for v, c in s.classes]
        rows.append(("Khác" if lang == "vi" else "Other", s.fill or s.stroke or "#888"))
    items = "".join(
        f'<div><span style="display:inline-block;width:12px;height:12px;margin-right:6px;'
        f'background:{html.escape(c)};border:1px solid #555"></span>{html.escape(t)}</div>'
        for t, c in rows)
    return (f'<div class="huegis-legend" style="position:fixed;bottom:24px;left:12px;'
            f'z-index:9999;background:#fff;padding:6px 10px;border:1px solid #999;'
            f'border-radius:4px;font:12px sans-serif"><b>{html.escape(title)}</b>'
            f"{items}</div>")


def geojson_map(layer: Layer, data: dict[str, Any],
                bbox: tuple[float, float, float, float] | None = None,
                lang: str = "vi") -> folium.Map:
    """A folium map of GeoJSON ``data`` drawn with ``layer``'s style, legend and popups
    (field titles in ``lang``, Vietnamese by default)."""
    fmap = folium.Map(location=HUE_CENTER_LATLON, zoom_start=13, tiles=None,
                      control_scale=True)
    s = layer.style
    fields = sorted({k for f in data["features"] for k in f["properties"]},
                    key=lambda k: [x.name for x in layer.fields].index(k)
                    if layer.has_field(k) else 99)
    aliases = [layer.field(k).title_in(lang) if layer.has_field(k) else k for k in fields]
    popup = folium.GeoJsonPopup(fields=fields, aliases=aliases) if fields else None
    point = "Point" in layer.geometry_type

    def style(feature: dict[str, Any]) -> dict[str, Any]:
        colour = _colour(layer, feature["properties"])
        return {"fillColor": colour, "color": s.stroke or colour, "weight": s.stroke_width,
                "fillOpacity": 0.9 if point else s.fill_opacity, "radius": s.radius}

    folium.GeoJson(
        data, name=layer.title_vi if lang == "vi" else layer.title, style_function=style,
        popup=popup,
        marker=folium.CircleMarker(radius=s.radius) if point else None,
        attr=ATTRIBUTION,
    ).add_to(fmap)
    fmap.get_root().html.add_child(folium.Element(legend_html(layer, lang)))
    fmap.get_root().html.add_child(folium.Element(
        f'<div style="position:fixed;bottom:2px;right:4px;z-index:9999;font:10px sans-serif;'
        f'background:rgba(255,255,255,.8)">{html.escape(ATTRIBUTION)}</div>'))
    folium.LayerControl().add_to(fmap)
    if bbox is not None:
        fmap.fit_bounds([[bbox[1], bbox[0]], [bbox[3], bbox[2]]])
    elif data["features"]:
        bounds = _bounds(data)
        if bounds:
            fmap.fit_bounds(bounds)
    return fmap


def _bounds(data: dict[str, Any]) -> list[list[float]] | None:
    xs: list[float] = []
    ys: list[float] = []

    def walk(c: Any) -> None:
        if c and isinstance(c[0], (int, float)):
            xs.append(c[0])
            ys.append(c[1])
        else:
            for part in c:
                walk(part)

    for f in data["features"]:
        if f.get("geometry"):
            walk(f["geometry"]["coordinates"])
    return [[min(ys), min(xs)], [max(ys), max(xs)]] if xs else None


def layer_map_html(dsn: str, layer: Layer, bbox: tuple[float, float, float, float] | None = None,
                   limit: int = 5_000, principal: Any = None, lang: str = "vi") -> str:
    """The standalone HTML page of a layer's map (what ``huegis map export`` writes)."""
    with psycopg.connect(dsn) as conn:
        data = layer_geojson(conn, layer, bbox, limit, principal)
    html_text = geojson_map(layer, data, bbox, lang).get_root().render()
    return html_text

