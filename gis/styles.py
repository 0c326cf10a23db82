"""MapLibre style documents built from the catalog's :class:`layers.Style` declarations.

One document per vector layer (its id) and ``public`` for the whole public map. Each layer
becomes MapLibre layers named ``{id}-fill``/``{id}-line``/``{id}-circle``/``{id}-label``, reading
the layer's own vector tiles (source and source-layer named by the collection id). Categorised
colours (``Style.classify``/``classes``) become a ``match`` expression; the legend, titles in
Vietnamese and English and the popup fields travel in ``metadata`` under ``huegis:``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gis.errors import NotFound
from layers import ATTRIBUTION, VECTOR_LAYERS, Field, Layer

PUBLIC_STYLE = "public"
# Drawing order of the public map: areas first, then points, the ward outlines and labels last.
PUBLIC_ORDER = ("wards", "parcels", "construction", "incidents", "education", "health",
                "tourism")
FONT = ["DejaVu Sans Book"]
# Centre of the public map (Đại Nội, the Imperial City) and its start zoom.
HUE_CENTER = [107.5775, 16.469]
HUE_ZOOM = 13
# Huế City bounds (CRS84) for the sources.
HUE_BOUNDS = [107.0, 16.0, 108.3, 16.8]
# How much lower than a layer's detail zoom its generalized tiles are requested.
GENERALIZED_ZOOMS = 3
SOURCE_MAXZOOM = 16
OTHER_COLOUR_LABEL = ("Other", "Khác")
# Property of the point clusters that the tile service draws below a layer's detail zoom.
CLUSTER_COUNT = "count"


def style_ids() -> list[str]:
    """Ids of the style documents served at ``/styles/{id}``.

    >>> style_ids()[:3]
    ['public', 'wards', 'parcels']
    """
    return [PUBLIC_STYLE, *VECTOR_LAYERS]


def style_title(style_id: str) -> tuple[str, str]:
    """(English, Vietnamese) title of a style.

    >>> style_title("parcels")
    ('Land parcels', 'Thửa đất')
    """
    if style_id == PUBLIC_STYLE:
        return "Huế public map", "Bản đồ công cộng Huế"
    layer = _layer(style_id)
    return layer.title, layer.title_vi


def _layer(style_id: str) -> Layer:
    layer = VECTOR_LAYERS.get(style_id)
    if layer is None:
        raise NotFound(f"unknown style {style_id!r}; styles: {', '.join(style_ids())}")
    return layer


def colour_expression(layer: Layer) -> Any:
    """The fill/circle colour: a ``match`` on the classified field, else the plain colour.

    Each label is a one-element array (as valid in MapLibre as a bare value): QGIS 3.22's
    style converter turns bare string labels into an empty ``IN ()`` and loses the colours.

    >>> from layers import VECTOR_LAYERS
    >>> colour_expression(VECTOR_LAYERS["construction"])[:4]
    ['match', ['get', 'kind'], ['permit'], '#fdb462']
    >>> colour_expression(VECTOR_LAYERS["health"])
    '#e41a1c'
    """
    s = layer.style
    base = s.fill or s.stroke or "#888888"
    if not (s.classify and s.classes):
        return base
    expr: list[Any] = ["match", ["get", s.classify]]
    for value, colour in s.classes:
        expr += [[value], colour]
    return [*expr, base]


# Areas generalized into blocks (parcels) are outlined from this many zooms after their
# detail zoom (:func:`outline_zoom`), in the web map's style and the PNG maps alike.
BLOCK_OUTLINE_ZOOMS_AFTER_DETAIL = 2


def outline_zoom(layer: Layer) -> int | None:
    """First zoom of the outlines of a layer whose small areas are generalized into blocks
    (parcels: 16, two zooms after their detail zoom): before it, at 4.8 m a pixel, their
    outlines would hide the land-use colours, as they would the blocks'. ``None``: outlines
    at every zoom.

    >>> from layers import VECTOR_LAYERS
    >>> outline_zoom(VECTOR_LAYERS["parcels"]), outline_zoom(VECTOR_LAYERS["wards"])
    (16, None)
    """
    g = layer.generalize
    if g is None or g.mode != "blocks":
        return None
    return g.until + BLOCK_OUTLINE_ZOOMS_AFTER_DETAIL


ZoomRange = Callable[[Layer], tuple[int, int]]


def default_zoom_range(layer: Layer) -> tuple[int, int]:
    """Zooms with tiles when the tile service does not say: generalized tiles a few zooms
    below the layer's detail zoom."""
    return max(0, layer.zoom[0] - GENERALIZED_ZOOMS), layer.zoom[1]


def source_zooms(layer: Layer, zoom_range: ZoomRange = default_zoom_range) -> tuple[int, int]:
    """(minzoom, maxzoom) of a layer's tile source, from ``zoom_range`` (the tile service's
    zooms, generalized views included); above ``SOURCE_MAXZOOM`` the client over-zooms.

    >>> source_zooms(VECTOR_LAYERS["parcels"])
    (11, 16)
    """
    lo, hi = zoom_range(layer)
    return lo, max(min(hi, SOURCE_MAXZOOM), lo)


def source(layer: Layer, base_url: str, zoom_range: ZoomRange = default_zoom_range
           ) -> dict[str, Any]:
    """The vector tile source of a layer (its OGC API tiles in WebMercatorQuad)."""
    lo, hi = source_zooms(layer, zoom_range)
    return {
        "type": "vector",
        "tiles": [f"{base_url}/collections/{layer.id}/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}"],
        "minzoom": lo, "maxzoom": hi, "bounds": HUE_BOUNDS, "attribution": ATTRIBUTION,
    }


def _geometry_kind(layer: Layer) -> str:
    g = layer.geometry_type
    return "polygon" if "Polygon" in g else "line" if "Line" in g else "point"


def style_layers(layer: Layer, zoom_range: ZoomRange = default_zoom_range
                 ) -> list[dict[str, Any]]:
    """MapLibre layers drawing one catalog layer from its own source.

    >>> [x["id"] for x in style_layers(VECTOR_LAYERS["parcels"])]
    ['parcels-fill', 'parcels-line', 'parcels-label']
    >>> [x["type"] for x in style_layers(VECTOR_LAYERS["tourism"])]
    ['circle', 'symbol']
    """
    s, kind = layer.style, _geometry_kind(layer)
    common = {"source": layer.id, "source-layer": layer.id,
              "minzoom": source_zooms(layer, zoom_range)[0],
              "metadata": {"huegis:collection": layer.id}}
    out: list[dict[str, Any]] = []
    colour = colour_expression(layer)
    if kind == "polygon":
        out.append({"id": f"{layer.id}-fill", "type": "fill", **common,
                    "paint": {"fill-color": colour, "fill-opacity": s.fill_opacity}})
        first_outline = outline_zoom(layer)
        out.append({"id": f"{layer.id}-line", "type": "line", **common,
                    "paint": {"line-color": s.stroke or "#333333",
                              "line-width": s.stroke_width}})
        if first_outline is not None:
            out[-1]["minzoom"] = max(common["minzoom"], first_outline)
    elif kind == "line":
        out.append({"id": f"{layer.id}-line", "type": "line", **common,
                    "paint": {"line-color": colour, "line-width": s.stroke_width}})
    else:
        out.append({"id": f"{layer.id}-circle", "type": "circle", **common,
                    "paint": {"circle-color": colour,
                              # clusters of the generalized view carry their ``count``
                              "circle-radius": ["case", ["has", CLUSTER_COUNT],
                                                ["interpolate", ["linear"],
                                                 ["get", CLUSTER_COUNT], 1, s.radius,
                                                 100, s.radius * 3], s.radius],
                              "circle-stroke-color": s.stroke or "#ffffff",
                              "circle-stroke-width": 1}})
    if s.label and layer.has_field(s.label) and layer.field(s.label).public:
        # Labels where they fit: areas from their detail zoom, points two zooms later.
        label_zoom = s.label_minzoom or max(layer.zoom[0] + (0 if kind == "polygon" else 2),
                                            common["minzoom"])
        layout: dict[str, Any] = {"text-field": ["get", s.label], "text-font": FONT,
                                  "text-size": 12, "text-max-width": 8}
        if kind == "point":
            layout |= {"text-offset": [0, 1.1], "text-anchor": "top", "text-optional": True}
        out.append({"id": f"{layer.id}-label", "type": "symbol", **common,
                    "minzoom": label_zoom, "layout": layout,
                    "paint": {"text-color": "#222222", "text-halo-color": "#ffffff",
                              "text-halo-width": 1.2}})
    return out


def field_entry(f: Field) -> dict[str, Any]:
    """What the pages show of a field: its titles and what its coded values mean, in
    English and Vietnamese.

    >>> field_entry(VECTOR_LAYERS["parcels"].field("land_use"))["choices"]["ODT"]
    ['Urban residential land', 'Đất ở tại đô thị']
    """
    return {"name": f.name, "title": f.title_in("en"), "title_vi": f.title_in("vi"),
            "choices": {v: [en, vi] for v, en, vi in f.choice_titles}}


def legend(layer: Layer) -> dict[str, Any]:
    """Legend entry of a layer: titles, geometry kind, colour items (from the catalog).

    >>> legend(VECTOR_LAYERS["construction"])["items"][0]
    {'value': 'permit', 'label': 'Building permit', 'label_vi': 'Giấy phép xây dựng', \
'colour': '#fdb462'}
    """
    s = layer.style
    items = []
    if s.classify:
        f = layer.field(s.classify)
        items = [{"value": v, "label": f.choice_title(v, "en"),
                  "label_vi": f.choice_title(v, "vi"), "colour": c} for v, c in s.classes]
    if items:
        items.append({"value": None, "label": OTHER_COLOUR_LABEL[0],
                      "label_vi": OTHER_COLOUR_LABEL[1], "colour": s.fill or s.stroke})
    return {"id": layer.id, "title": layer.title, "title_vi": layer.title_vi,
            "geometry": _geometry_kind(layer), "fill": s.fill, "stroke": s.stroke,
            "classify": s.classify, "items": items,
            "fields": [field_entry(f) for f in layer.public_fields]}


def background_layer() -> dict[str, Any]:
    return {"id": "background", "type": "background",
            "paint": {"background-color": "#f4f1ea"}}


def basemap(url: str, attribution: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A raster basemap source (XYZ template) and its layer."""
    src = {"type": "raster", "tiles": [url], "tileSize": 256, "attribution": attribution}
    return src, {"id": "basemap", "type": "raster", "source": "basemap"}


def style_document(style_id: str, base_url: str, basemap_url: str | None = None,
                   basemap_attribution: str = "",
                   zoom_range: ZoomRange = default_zoom_range) -> dict[str, Any]:
    """The MapLibre style document ``style_id`` (a layer id or ``public``).

    ``base_url`` makes the tile and glyph URLs absolute. With ``basemap_url`` (an XYZ raster
    template) a basemap is drawn under the layers. ``zoom_range`` gives the zooms at which
    the tile service has tiles of a layer.

    >>> doc = style_document("public", "http://h")
    >>> doc["version"], sorted(doc["sources"])[:3]
    (8, ['construction', 'education', 'health'])
    >>> doc["sources"]["parcels"]["tiles"][0]
    'http://h/collections/parcels/tiles/WebMercatorQuad/{z}/{y}/{x}'
    """
    if style_id == PUBLIC_STYLE:
        chosen = [VECTOR_LAYERS[i] for i in PUBLIC_ORDER if i in VECTOR_LAYERS]
    else:
        chosen = [_layer(style_id)]
    title, title_vi = style_title(style_id)
    sources: dict[str, Any] = {}
    layers: list[dict[str, Any]] = [background_layer()]
    if basemap_url:
        sources["basemap"], bm = basemap(basemap_url, basemap_attribution)
        layers.append(bm)
    labels: list[dict[str, Any]] = []
    top_lines: list[dict[str, Any]] = []
    for layer in chosen:
        sources[layer.id] = source(layer, base_url, zoom_range)
        for sl in style_layers(layer, zoom_range):
            if sl["type"] == "symbol":
                labels.append(sl)
            elif layer.style.outline_on_top and sl["type"] == "line" and len(chosen) > 1:
                top_lines.append(sl)  # e.g. ward borders stay visible above the parcels
            else:
                layers.append(sl)
    layers += top_lines + labels
    return {
        "version": 8,
        "name": title,
        "metadata": {"huegis:title": title, "huegis:title_vi": title_vi,
                     "huegis:legend": [legend(layer) for layer in chosen],
                     "huegis:attribution": ATTRIBUTION},
        "center": HUE_CENTER,
        "zoom": HUE_ZOOM if style_id == PUBLIC_STYLE else max(chosen[0].zoom[0], HUE_ZOOM),
        "glyphs": f"{base_url}/fonts/{{fontstack}}/{{range}}.pbf",
        "sources": sources,
        "layers": layers,
    }
