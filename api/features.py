"""OGC API Features (walking skeleton): collections and GeoJSON items from the catalog."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import urlencode

import asyncpg
from fastapi import APIRouter, Query, Request, Response

from api.deps import AnyLayerDep, LayerDep, PoolDep, SettingsDep, base_url
from gis import features
from gis.crs import parse_bbox
from gis.errors import FeatureNotFound
from layers import CATALOG, Layer, RasterLayer

GEOJSON = "application/geo+json"


def collection_doc(layer: Layer | RasterLayer, base: str,
                   extent: tuple[float, ...] | None = None) -> dict:
    """The OGC collection description of a catalog layer."""
    href = f"{base}/collections/{layer.id}"
    doc: dict = {
        "id": layer.id,
        "title": layer.title,
        "description": layer.description,
        "keywords": list(layer.keywords),
        "titles": {"en": layer.title, "vi": layer.title_vi},
        "links": [{"href": href, "rel": "self", "type": "application/json",
                   "title": layer.title}],
    }
    if isinstance(layer, Layer):
        doc["itemType"] = "feature"
        doc["crs"] = ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"]
        doc["geometryType"] = layer.geometry_type
        doc["minZoom"], doc["maxZoom"] = layer.zoom
        doc["properties"] = {f.name: {"type": f.type, "title": f.title or f.name}
                             for f in layer.public_fields}
        doc["links"] += [
            {"href": f"{href}/items", "rel": "items", "type": GEOJSON,
             "title": f"{layer.title} (GeoJSON)"},
            {"href": f"{href}/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}", "rel": "item",
             "type": "application/vnd.mapbox-vector-tile", "templated": True,
             "title": f"{layer.title} vector tiles (WebMercatorQuad)"},
        ]
    else:
        doc["itemType"] = "coverage"
        doc["units"] = layer.units
        doc["nodata"] = layer.nodata
    if extent is not None and None not in extent:
        doc["extent"] = {"spatial": {"bbox": [list(extent)],
                                     "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}}
    return doc


@dataclass
class FeaturesRouter:
    """Routes ``/collections…`` for every layer of the catalog."""

    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Features"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:  # noqa: C901 (route table)
        r = self.router

        @r.get("/collections", summary="The layers of the Huế map")
        async def collections(request: Request, settings: SettingsDep) -> dict:
            """List every collection (vector and raster layers) of the catalog."""
            base = base_url(request, settings)
            return {
                "links": [{"href": f"{base}/collections", "rel": "self",
                           "type": "application/json"}],
                "collections": [collection_doc(layer, base) for layer in CATALOG.values()],
            }

        @r.get("/collections/{collection_id}", summary="One layer")
        async def collection(request: Request, layer: AnyLayerDep, pool: PoolDep,
                             settings: SettingsDep) -> dict:
            """Describe one collection, with its spatial extent."""
            extent = None
            if isinstance(layer, Layer):
                try:
                    row = await pool.fetchrow(features.extent_sql(layer, estimated=True))
                except asyncpg.PostgresError:  # a view has no statistics of its own
                    row = None
                if row is None or row[0] is None:
                    row = await pool.fetchrow(features.extent_sql(layer))
                extent = tuple(row) if row else None
            return collection_doc(layer, base_url(request, settings), extent)

        @r.get("/collections/{collection_id}/items", summary="Features of a layer (GeoJSON)",
               response_class=Response,
               responses={200: {"content": {GEOJSON: {}}}})
        async def items(
            request: Request, layer: LayerDep, pool: PoolDep, settings: SettingsDep,
            limit: Annotated[int | None, Query(description="Features per page")] = None,
            offset: Annotated[int, Query(ge=0, description="Features to skip")] = 0,
            after: Annotated[str | None, Query(
                description="Only features with a greater id (the `next` links' cursor)")] = None,
            bbox: Annotated[str | None, Query(description="W,S,E,N in CRS84")] = None,
        ) -> Response:
            """GeoJSON features of a layer, public fields only, filtered by bbox, paged."""
            lim = features.check_limit(
                settings.default_items_limit if limit is None else limit,
                settings.max_items_limit)
            box = parse_bbox(bbox) if bbox is not None else None
            cursor = features.parse_cursor(layer, after) if after is not None else None
            sql, params = features.items_sql(
                layer, features.ItemsQuery(lim, offset, box, cursor))
            rows = await pool.fetch(sql, *params)
            page = [r[0] for r in rows[:lim]]
            base = base_url(request, settings)
            here = f"{base}/collections/{layer.id}/items"

            def link(rel: str, **extra: object) -> dict:
                query = {"limit": lim, **({"bbox": bbox} if bbox else {}), **extra}
                return {"href": f"{here}?{urlencode(query)}", "rel": rel, "type": GEOJSON}

            here_args = {"after": after} if after is not None else {"offset": offset}
            links = [link("self", **here_args),
                     {"href": f"{base}/collections/{layer.id}", "rel": "collection",
                      "type": "application/json"}]
            if len(rows) > lim:
                links.append(link("next", after=rows[lim - 1][1]))
            if after is None and offset > 0:
                links.append(link("prev", offset=max(0, offset - lim)))
            body = features.feature_collection(page, links, len(page))
            return Response(body, media_type=GEOJSON)

        @r.get("/collections/{collection_id}/items/{feature_id}",
               summary="One feature (GeoJSON)", response_class=Response,
               responses={200: {"content": {GEOJSON: {}}}})
        async def item(layer: LayerDep, pool: PoolDep, feature_id: str) -> Response:
            """One feature of a layer by its id, public fields only."""
            text = await pool.fetchval(features.item_sql(layer), feature_id)
            if text is None:
                raise FeatureNotFound(f"no feature {feature_id!r} in collection {layer.id!r}")
            return Response(text, media_type=GEOJSON)
