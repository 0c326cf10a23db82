"""Documents describing tiles: OGC API – Tiles tile matrix sets and tilesets, TileJSON 3.0.0.

Pure functions of the catalog, a base URL and the layers' extents (no database here).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from gis.tiles import generalize, mvt
from gis.tiles.mvt import MAX_ZOOM, SUPPORTED_TMS, tile_fields
from layers import ATTRIBUTION, Layer

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
TILEJSON_VERSION = "3.0.0"
# MVT value types of the catalog's field types (TileJSON ``vector_layers.fields``).
_FIELD_TYPES = {"text": "String", "int": "Number", "float": "Number", "date": "String",
                "datetime": "String", "bool": "Boolean"}
HUE_BOUNDS = (107.0, 16.0, 108.25, 16.8)


def tms_uri(tms_id: str) -> str:
    return f"http://www.opengis.net/def/tilematrixset/OGC/1.0/{tms_id}"


def tms_crs(tms_id: str) -> str:
    """URI of the CRS of a supported tile matrix set."""
    if tms_id == "WebMercatorQuad":
        return "http://www.opengis.net/def/crs/EPSG/0/3857"
    return "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def tile_matrix_sets(base: str) -> dict[str, Any]:
    """``/tileMatrixSets``: the supported tile matrix sets with their links."""
    return {"tileMatrixSets": [
        {"id": t, "title": mvt.tile_matrix_set(t).title, "uri": tms_uri(t),
         "links": [{"rel": "self", "type": "application/json", "title": t,
                    "href": f"{base}/tileMatrixSets/{t}"}]}
        for t in SUPPORTED_TMS]}


@lru_cache(maxsize=8)
def tile_matrix_set_doc(tms_id: str) -> dict[str, Any]:
    """``/tileMatrixSets/{id}``: the OGC 2DTileMatrixSet JSON of morecantile."""
    tms = mvt.tile_matrix_set(tms_id)
    return tms.model_dump(exclude_none=True, mode="json", by_alias=True)


def vector_layer_entry(layer: Layer) -> dict[str, Any]:
    """One TileJSON ``vector_layers`` entry: every field any zoom's tile may carry."""
    lo, hi = generalize.zoom_range(layer)
    fields = {f: _FIELD_TYPES[layer.field(f).type] for f in tile_fields(layer, MAX_ZOOM)}
    g = layer.generalize
    for name, kind in (g.extra_fields if g else ()):
        fields.setdefault(name, kind)
    description = layer.title
    if g is not None and g.lean_until is not None:
        lean = tile_fields(layer, g.lean_until - 1)
        description += (f" (below zoom {g.lean_until}: {', '.join(lean) or 'no field'} and "
                        f"the feature id; the other fields by id from the items route)")
    return {"id": layer.id, "description": description, "minzoom": lo, "maxzoom": hi,
            "fields": fields}


def _union(boxes: list[tuple[float, ...] | None]) -> list[float]:
    boxes = [b for b in boxes if b and None not in b]
    if not boxes:
        return list(HUE_BOUNDS)
    return [min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes)]


def tilejson(layers: list[Layer], tiles_url: str, extents: list[tuple[float, ...] | None],
             name: str) -> dict[str, Any]:
    """TileJSON 3.0.0 of ``layers`` served at ``tiles_url`` (``{z}/{x}/{y}`` template).

    >>> from layers import VECTOR_LAYERS
    >>> doc = tilejson([VECTOR_LAYERS["parcels"]], "http://h/{z}/{y}/{x}", [None], "p")
    >>> doc["tilejson"], doc["minzoom"], doc["vector_layers"][0]["fields"]["land_use"]
    ('3.0.0', 11, 'String')
    """
    ranges = [generalize.zoom_range(layer) for layer in layers]
    bounds = _union(extents)
    minzoom = min(r[0] for r in ranges)
    return {
        "tilejson": TILEJSON_VERSION,
        "name": name,
        "description": "; ".join(layer.title for layer in layers),
        "version": "1.0.0",
        "attribution": ATTRIBUTION,
        "scheme": "xyz",
        "tiles": [tiles_url],
        "minzoom": minzoom,
        "maxzoom": max(r[1] for r in ranges),
        "bounds": bounds,
        "center": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, max(minzoom, 12)],
        "vector_layers": [vector_layer_entry(layer) for layer in layers],
    }


def tileset(layers: list[Layer], tms_id: str, base: str, path: str,
            extents: list[tuple[float, ...] | None], query: str = "") -> dict[str, Any]:
    """OGC API – Tiles tileset metadata (vector, one tile matrix set).

    ``path`` is the tileset's path under ``base`` (``/collections/x/tiles/T`` or ``/tiles/T``).
    """
    ranges = [generalize.zoom_range(layer) for layer in layers]
    bounds = _union(extents)
    return {
        "title": "; ".join(layer.title for layer in layers),
        "dataType": "vector",
        "crs": tms_crs(tms_id),
        "tileMatrixSetURI": tms_uri(tms_id),
        "tileMatrixSetLimits": [],
        "boundingBox": {"lowerLeft": bounds[:2], "upperRight": bounds[2:],
                        "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"},
        "minTileMatrix": str(min(r[0] for r in ranges)),
        "maxTileMatrix": str(max(r[1] for r in ranges)),
        "layers": [{"id": layer.id, "title": layer.title, "dataType": "vector",
                    "geometryDimension": 0 if "Point" in layer.geometry_type else (
                        2 if layer.is_polygonal else 1),
                    "minTileMatrix": str(generalize.zoom_range(layer)[0]),
                    "maxTileMatrix": str(generalize.zoom_range(layer)[1]),
                    "propertiesSchema": {"type": "object", "properties": {
                        k: {"type": v.lower() if v != "Number" else "number"}
                        for k, v in vector_layer_entry(layer)["fields"].items()}}}
                   for layer in layers],
        "attribution": ATTRIBUTION,
        "links": [
            {"rel": "self", "type": "application/json", "href": f"{base}{path}{query}"},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
             "type": "application/json", "href": f"{base}/tileMatrixSets/{tms_id}"},
            {"rel": "item", "type": MVT_MEDIA_TYPE, "templated": True,
             "href": f"{base}{path}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}{query}"},
            {"rel": "describedby", "type": "application/json",
             "href": f"{base}{path}/tilejson.json{query}"},
        ],
    }


def tilesets_list(layers: list[Layer], base: str, prefix: str, query: str = ""
                  ) -> dict[str, Any]:
    """``/collections/{id}/tiles`` or ``/tiles``: one vector tileset per matrix set."""
    title = "; ".join(layer.title for layer in layers)
    return {"tilesets": [
        {"title": f"{title} ({t})", "dataType": "vector", "tileMatrixSetURI": tms_uri(t),
         "crs": tms_crs(t),
         "links": [
             {"rel": "self", "type": "application/json",
              "href": f"{base}{prefix}/{t}{query}"},
             {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
              "type": "application/json", "href": f"{base}/tileMatrixSets/{t}"},
             {"rel": "item", "type": MVT_MEDIA_TYPE, "templated": True,
              "href": f"{base}{prefix}/{t}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}{query}"}]}
        for t in SUPPORTED_TMS],
        "links": [{"rel": "self", "type": "application/json", "href": f"{base}{prefix}{query}"}]}
