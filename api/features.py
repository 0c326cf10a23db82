"""OGC API Features Parts 1-3 (core, CRS by reference, CQL2 filtering) from the catalog:
collections, queryables, items and items by id, as GeoJSON, HTML, CSV and GeoPackage."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import asyncpg
from fastapi import APIRouter, Query, Request, Response

from api.deps import AnyLayerDep, LayerDep, PoolDep, PrincipalDep, SettingsDep, base_url
from api.exports import export_response
from api.landing import FormatQuery, html_page, negotiate
from gis import features
from gis.auth import PUBLIC, Principal
from gis.errors import FeatureNotFound, InvalidParameter
from gis.features import cql2
from gis.features import request as req
from gis.features.cql2 import parse_filter
from gis.features.items import feature_collection_bytes, format_cursor, one_scan, page_sql
from gis.features.svg import svg_map
from gis.sqlbuild import visible_fields
from layers import CATALOG, VECTOR_LAYERS, Layer, RasterLayer

GEOJSON = "application/geo+json"
CRS84 = req.CRS84
# Query parameters of /items with a meaning of their own (any other must name a property).
ITEMS_PARAMS = {"f", "limit", "offset", "after", "before", "bbox", "bbox-crs", "crs", "datetime",
                "properties", "sortby", "filter", "filter-lang", "filter-crs"}
JSON_TYPES = {"text": {"type": "string"}, "int": {"type": "integer"},
              "float": {"type": "number"}, "bool": {"type": "boolean"},
              "date": {"type": "string", "format": "date"},
              "datetime": {"type": "string", "format": "date-time"}}


def collection_doc(layer: Layer | RasterLayer, base: str,
                   extent: tuple[float, ...] | None = None,
                   interval: tuple[str | None, str | None] | None = None) -> dict:
    """The OGC collection description of a catalog layer."""
    href = f"{base}/collections/{layer.id}"
    doc: dict = {
        "id": layer.id,
        "title": layer.title,
        "description": layer.description,
        "keywords": list(layer.keywords),
        "titles": {"en": layer.title, "vi": layer.title_vi},
        "links": [{"href": href, "rel": "self", "type": "application/json",
                   "title": layer.title},
                  {"href": f"{href}?f=html", "rel": "alternate", "type": "text/html",
                   "title": f"{layer.title} (HTML)"}],
    }
    if isinstance(layer, Layer):
        doc["itemType"] = "feature"
        doc["crs"] = req.api_crs_list()
        doc["storageCrs"] = req.CRS84.uri
        doc["geometryType"] = layer.geometry_type
        doc["minZoom"], doc["maxZoom"] = layer.zoom
        doc["properties"] = {f.name: {"type": f.type, "title": f.title_in("en"),
                                      "x-title-vi": f.title_in("vi")}
                             for f in layer.public_fields}
        doc["links"] += [
            {"href": f"{href}/items", "rel": "items", "type": GEOJSON,
             "title": f"{layer.title} (GeoJSON)"},
            {"href": f"{href}/items?f=html", "rel": "items", "type": "text/html",
             "title": f"{layer.title} (HTML)"},
            {"href": f"{href}/queryables", "rel": "http://www.opengis.net/def/rel/ogc/1.0/"
             "queryables", "type": "application/schema+json", "title": "Queryables"},
            {"href": f"{href}/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}", "rel": "item",
             "type": "application/vnd.mapbox-vector-tile", "templated": True,
             "title": f"{layer.title} vector tiles (WebMercatorQuad)"},
        ]
    else:
        doc["itemType"] = "coverage"
        doc["units"] = layer.units
        doc["nodata"] = layer.nodata
    if extent is not None and None not in extent:
        doc["extent"] = {"spatial": {"bbox": [list(extent)], "crs": req.CRS84.uri}}
        if interval is not None:
            doc["extent"]["temporal"] = {
                "interval": [list(interval)],
                "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    return doc


def queryables_doc(layer: Layer, base: str) -> dict:
    """JSON Schema of what a filter may name: the public fields and the geometry."""
    props: dict[str, Any] = {
        "geometry": {"format": f"geometry-{layer.geometry_type.lower()}",
                     "x-ogc-role": "primary-geometry", "title": "Geometry"}}
    for f in layer.public_fields:
        p = {"title": f.title_in("en"), "x-title-vi": f.title_in("vi"), **JSON_TYPES[f.type]}
        if f.choices:
            p["enum"] = list(f.choices)
        props[f.name] = p
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{base}/collections/{layer.id}/queryables", "type": "object",
            "title": layer.title, "properties": props, "additionalProperties": False}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _link(href: str, rel: str, typ: str = GEOJSON, title: str | None = None) -> dict:
    return {"href": href, "rel": rel, "type": typ, **({"title": title} if title else {})}


async def _guard(coro: Any) -> Any:
    """Await a query; values PostgreSQL or asyncpg cannot take are the caller's 400."""
    try:
        return await coro
    except (asyncpg.DataError, asyncpg.exceptions.DataError, OverflowError) as exc:
        raise InvalidParameter(f"a value of the request is out of range: {exc}") from None
    except asyncpg.InternalServerError as exc:  # PostGIS: e.g. a point it cannot transform
        if "transform" in str(exc).lower() or "geometry" in str(exc).lower():
            raise InvalidParameter(f"the request's geometry cannot be used: {exc}") from None
        raise


def build_query(request: Request, layer: Layer, settings: Any, principal: Principal,
                *, limit: int | None, offset: int, after: str | None, bbox: str | None,
                before: str | None = None,
                bbox_crs: str | None, crs: str | None, datetime_: str | None,
                properties: str | None, sortby: str | None, filter_: str | None,
                filter_lang: str | None, filter_crs: str | None) -> features.ItemsQuery:
    """Validate every parameter of an items request into an :class:`ItemsQuery` (400s)."""
    visible = visible_fields(layer, principal=principal)
    lim = features.check_limit(settings.default_items_limit if limit is None else limit,
                               settings.max_items_limit)
    features.check_offset(offset, settings.max_items_offset)
    box_crs = req.parse_api_crs(bbox_crs)
    if bbox_crs is not None and bbox is None:
        raise InvalidParameter("bbox-crs was given without bbox")
    box = req.parse_bbox_param(bbox, box_crs) if bbox is not None else None
    equals = []
    for name, value in request.query_params.multi_items():
        if name in ITEMS_PARAMS:
            continue
        f = req.field_named(layer, name, visible, "query parameter or property")
        equals.append((name, req.coerce(f, value)))
    lang = filter_lang or "cql2-text"
    if filter_lang is not None and filter_ is None:
        raise InvalidParameter("filter-lang was given without filter")
    if sum(x is not None for x in (after, before)) + bool(offset) > 1:
        raise InvalidParameter("use one of offset, after and before")
    sort = req.parse_sortby(layer, sortby, visible) if sortby is not None else ()
    return features.ItemsQuery(
        limit=lim, offset=offset, bbox=box, bbox_crs=box_crs,
        after=features.parse_cursor(layer, after, sort) if after is not None else None,
        before=features.parse_cursor(layer, before, sort) if before is not None else None,
        when=req.parse_datetime_param(datetime_) if datetime_ is not None else None,
        equals=tuple(equals),
        filter=_parsed_filter(filter_, lang) if filter_ is not None else None,
        filter_crs=req.parse_api_crs(filter_crs),
        properties=(req.parse_properties(layer, properties, visible)
                    if properties is not None else None),
        sortby=sort, crs=req.parse_api_crs(crs), principal=principal)


@functools.lru_cache(maxsize=256)
def _parsed_filter(text: str, lang: str) -> Any:
    """:func:`parse_filter`, once per worker for each filter text: map clients send the
    same filter with every pan, and parsing it (pygeofilter's lark grammar) costs ~0.06 ms,
    a tenth of a worker's CPU time per filtered items request. The AST is only read
    when compiled to SQL (per layer and request, errors included), so one copy serves every
    request; a filter that does not parse raises each time (exceptions are not cached)."""
    return parse_filter(text, lang)


async def estimated_count(conn: Any, layer: Layer, q: features.ItemsQuery, cap: int) -> int:
    """Beyond ``cap`` matching features, the planner's estimate of their number (EXPLAIN),
    never less than ``cap + 1``."""
    sql, params = features.explain_sql(layer, q)
    return max(cap + 1, features.plan_rows(await _guard(conn.fetchval(sql, *params))))


def _stream(pool: asyncpg.Pool, sql: str, params: list) -> AsyncIterator[str]:
    async def rows() -> AsyncIterator[str]:
        async with pool.acquire() as conn, conn.transaction():
            async for rec in conn.cursor(sql, *params, prefetch=1000):
                yield rec[0]
    return rows()


async def fetch_page(pool: asyncpg.Pool, layer: Layer, q: features.ItemsQuery, cap: int
                     ) -> tuple[bytes | None, list[str], bool, int]:
    """A page in one round trip (:func:`gis.features.items.page_sql`): its features as
    GeoJSON (UTF-8 bytes), the cursors of its rows, whether a further page exists,
    numberMatched."""
    once = one_scan(q)
    sql, params = page_sql(layer, q, cap, scan_once=once)
    async with pool.acquire() as conn:
        text, fetched, cursors, matched = await _guard(conn.fetchrow(sql, *params))
        if once and matched is not None and matched > cap:  # read again, sorted from all
            sql, params = page_sql(layer, q, cap)
            text, fetched, cursors, matched = await _guard(conn.fetchrow(sql, *params))
        cursors = cursors or []
        if matched is None:  # the page is everything
            matched = len(cursors)
        elif matched > cap:
            matched = await estimated_count(conn, layer, q, cap)
    return text, cursors, fetched > q.limit, matched


def geojson_page(request: Request, settings: Any, layer: Layer, q: features.ItemsQuery,
                 text: bytes | None, cursors: list[str], more: bool, matched: int
                 ) -> Response:
    """The FeatureCollection response of a page (the features' bytes are neither parsed
    nor decoded: copied once into the body)."""
    links = page_links(request, settings, layer, q, cursors, more)
    body = feature_collection_bytes(text, links, len(cursors), matched, _now())
    return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{q.crs.uri}>"})


def page_links(request: Request, settings: Any, layer: Layer, q: features.ItemsQuery,
           cursors: list[str], more: bool) -> list[dict]:
    """self/alternate/collection links, ``next`` and ``prev``, each keeping the request's
    other parameters. Pages continue by keyset cursors (``after``, ``before``: as cheap
    deep as first) on any order; pages reached by ``offset`` continue by offset."""
    base = base_url(request, settings)
    here = f"{base}/collections/{layer.id}/items"
    keep = [(k, v) for k, v in request.query_params.multi_items()
            if k not in ("offset", "after", "before", "limit", "f")]

    def href(**paging: object) -> str:
        return f"{here}?{urlencode([*keep, ('limit', q.limit), *paging.items()])}"

    def cursor(key: str) -> str:
        return format_cursor(key, q.default_order)

    current = {k: request.query_params[k] for k in ("after", "before", "offset")
               if k in request.query_params}
    links = [_link(href(**current), "self"),
             _link(href(**current, f="html"), "alternate", "text/html"),
             _link(f"{base}/collections/{layer.id}", "collection", "application/json")]
    if q.offset:
        if more and (q.default_order or q.offset + q.limit <= settings.max_items_offset):
            nxt = ({"after": cursor(cursors[-1])} if q.default_order
                   else {"offset": q.offset + q.limit})
            links.append(_link(href(**nxt), "next"))
        links.append(_link(href(offset=max(0, q.offset - q.limit)), "prev"))
        return links
    # Read backwards from `before`, `more` means a further page before this one.
    has_next = more if q.before is None else bool(cursors)
    has_prev = (q.after is not None and bool(cursors)) or (q.before is not None and more)
    if has_next and cursors:
        links.append(_link(href(after=cursor(cursors[-1])), "next"))
    if has_prev:
        links.append(_link(href(before=cursor(cursors[0])), "prev"))
    return links


# ------------------------------------------------------------------ fast path
_ITEMS_PATH = re.compile(r"/collections/([^/]+)/items")
# Query parameters of an items request and the keyword of build_query they fill.
_ITEMS_ARGS = {"limit": "limit", "offset": "offset", "after": "after", "before": "before",
               "bbox": "bbox", "bbox-crs": "bbox_crs", "crs": "crs", "datetime": "datetime_",
               "properties": "properties", "sortby": "sortby", "filter": "filter_",
               "filter-lang": "filter_lang", "filter-crs": "filter_crs"}


class ItemsFastPath:
    """Pure ASGI in front of the FastAPI app, like :class:`api.tiles.TileFastPath`: an
    anonymous ``GET /collections/{id}/items`` answered in GeoJSON skips FastAPI's routing,
    dependency solving and parameter validation (pydantic), the hot path of map clients.
    The same functions make the same bytes as the route. Anything else — another format,
    an API key or token, a parameter it cannot read, any error — goes to the app
    unchanged, which answers as it always does (errors included). Mounted by
    ``create_app``: ``app.add_middleware(ItemsFastPath, state=app.state)``."""

    def __init__(self, app: Any, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            m = _ITEMS_PATH.fullmatch(scope["path"])
            layer = VECTOR_LAYERS.get(m[1]) if m is not None else None
            if layer is not None:
                response = await self._answer(scope, layer)
                if response is not None:
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Any, layer: Layer) -> Response | None:
        request = Request(scope)
        if "x-api-key" in request.headers or "authorization" in request.headers:
            return None
        try:
            params = request.query_params
            if negotiate(request, params.get("f"), ("json", "html", "csv", "gpkg")) != "json":
                return None
            args: dict[str, Any] = {**dict.fromkeys(_ITEMS_ARGS.values()), "offset": 0}
            for name, key in _ITEMS_ARGS.items():
                values = params.getlist(name)
                if len(values) > 1:
                    return None
                if values:
                    args[key] = int(values[0]) if name in ("limit", "offset") else values[0]
            settings = self.state.settings
            q = build_query(request, layer, settings, PUBLIC, **args)
            pool = await self.state.pools.get()
            page = await fetch_page(pool, layer, q, settings.exact_count_max)
        except Exception:  # noqa: BLE001 - the app answers again, with its error shape
            return None
        return geojson_page(request, settings, layer, q, *page)


@dataclass
class FeaturesRouter:
    """Routes ``/collections…`` for every layer of the catalog."""

    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Features"]))

    def __post_init__(self) -> None:
        cql2.warm_up()
        self.register_routes()

    def register_routes(self) -> None:  # noqa: C901 (route table)
        r = self.router

        @r.get("/collections", summary="The layers of the Huế map")
        async def collections(request: Request, settings: SettingsDep, f: FormatQuery = None
                              ) -> Response:
            """List every collection (vector and raster layers) of the catalog."""
            base = base_url(request, settings)
            doc = {"links": [_link(f"{base}/collections", "self", "application/json"),
                             _link(f"{base}/collections?f=html", "alternate", "text/html")],
                   "crs": req.api_crs_list(),
                   "collections": [collection_doc(layer, base) for layer in CATALOG.values()]}
            if negotiate(request, f) == "html":
                return html_page("collections.html", request, settings, doc=doc)
            return Response(json.dumps(doc, ensure_ascii=False), media_type="application/json")

        @r.get("/collections/{collection_id}", summary="One layer")
        async def collection(request: Request, layer: AnyLayerDep, pool: PoolDep,
                             settings: SettingsDep, f: FormatQuery = None) -> Response:
            """Describe one collection, with its spatial (and temporal) extent."""
            fmt = negotiate(request, f)
            extent, interval = None, None
            if isinstance(layer, Layer):
                try:
                    row = await pool.fetchrow(features.extent_sql(layer, estimated=True))
                except asyncpg.PostgresError:  # a view has no statistics of its own
                    row = None
                if row is None or row[0] is None:
                    row = await pool.fetchrow(features.extent_sql(layer))
                extent = tuple(row) if row else None
                tsql = features.temporal_extent_sql(layer)
                if tsql:
                    lo, hi = await pool.fetchrow(tsql)
                    interval = tuple(v.isoformat() if v else None for v in (lo, hi))
            doc = collection_doc(layer, base_url(request, settings), extent, interval)
            if fmt == "html":
                svg = ""
                if extent and None not in extent:
                    w, s, e, n = extent
                    svg = svg_map([{"id": layer.id, "geometry": {"type": "Polygon", "coordinates": [
                        [[w, s], [e, s], [e, n], [w, n], [w, s]]]}}])
                return html_page("collection.html", request, settings, doc=doc, svg=svg)
            return Response(json.dumps(doc, ensure_ascii=False), media_type="application/json")

        @r.get("/collections/{collection_id}/queryables", summary="What filters may name",
               response_class=Response,
               responses={200: {"content": {"application/schema+json": {}}}})
        async def queryables(request: Request, layer: LayerDep, settings: SettingsDep,
                             f: FormatQuery = None) -> Response:
            """JSON Schema of the properties a CQL2 filter may use (public fields, geometry)."""
            doc = queryables_doc(layer, base_url(request, settings))
            if negotiate(request, f) == "html":
                return html_page("queryables.html", request, settings, doc=doc,
                                 layer_id=layer.id)
            return Response(json.dumps(doc, ensure_ascii=False),
                            media_type="application/schema+json")

        @r.get("/collections/{collection_id}/items", summary="Features of a layer (GeoJSON)",
               response_class=Response,
               responses={200: {"content": {GEOJSON: {}, "text/html": {}, "text/csv": {},
                                            "application/geopackage+sqlite3": {}}}})
        async def items(
            request: Request, layer: LayerDep, pool: PoolDep, settings: SettingsDep,
            principal: PrincipalDep, f: FormatQuery = None,
            limit: Annotated[int | None, Query(description="Features per page")] = None,
            offset: Annotated[int, Query(description="Features to skip (bounded: "
                                         "follow `next` links for deep pages)")] = 0,
            after: Annotated[str | None, Query(
                description="The features after this cursor (`next` links)")] = None,
            before: Annotated[str | None, Query(
                description="The features just before this cursor (`prev` links)")] = None,
            bbox: Annotated[str | None, Query(description="W,S,E,N (or 6 numbers with heights) "
                                              "in bbox-crs")] = None,
            bbox_crs: Annotated[str | None, Query(alias="bbox-crs")] = None,
            crs: Annotated[str | None, Query(description="Output CRS (default CRS84)")] = None,
            datetime: Annotated[str | None, Query(  # noqa: A002 (OGC parameter name)
                description="Instant or interval a/b (open ends ..) on the temporal field")
            ] = None,
            properties: Annotated[str | None, Query(description="Fields to return")] = None,
            sortby: Annotated[str | None, Query(description="+a,-b")] = None,
            filter: Annotated[str | None, Query(description="CQL2 filter")] = None,  # noqa: A002
            filter_lang: Annotated[str | None, Query(alias="filter-lang")] = None,
            filter_crs: Annotated[str | None, Query(alias="filter-crs")] = None,
        ) -> Response:
            """Features of a layer, filtered (bbox, datetime, properties, CQL2), sorted, paged;
            GeoJSON, HTML, CSV or GeoPackage."""
            fmt = negotiate(request, f, ("json", "html", "csv", "gpkg"))
            q = build_query(request, layer, settings, principal, limit=limit, offset=offset,
                            after=after, before=before, bbox=bbox, bbox_crs=bbox_crs, crs=crs,
                            datetime_=datetime, properties=properties, sortby=sortby,
                            filter_=filter, filter_lang=filter_lang, filter_crs=filter_crs)
            if fmt in ("csv", "gpkg"):
                return await self._download(pool, layer, q, fmt)
            text, cursors, more, matched = await fetch_page(pool, layer, q,
                                                            settings.exact_count_max)
            if fmt == "html":
                links = page_links(request, settings, layer, q, cursors, more)
                feats = json.loads(b"[%s]" % (text or b""))
                columns = (list(q.properties) if q.properties is not None
                           else visible_fields(layer, principal=principal))
                here = f"{base_url(request, settings)}/collections/{layer.id}/items"
                svg = svg_map(feats, link=here + "/{id}?f=html") if q.crs == CRS84 else ""
                pages = [{**lk, "href": lk["href"] + "&f=html"} for lk in links
                         if lk["rel"] in ("prev", "next")]
                return html_page("items.html", request, settings, layer=layer, features=feats,
                                 columns=columns, links=pages, svg=svg,
                                 number_returned=len(feats), number_matched=matched)
            return geojson_page(request, settings, layer, q, text, cursors, more, matched)

        @r.get("/collections/{collection_id}/items/{feature_id}",
               summary="One feature (GeoJSON)", response_class=Response,
               responses={200: {"content": {GEOJSON: {}, "text/html": {}}}})
        async def item(request: Request, layer: LayerDep, pool: PoolDep, settings: SettingsDep,
                       principal: PrincipalDep, feature_id: str, f: FormatQuery = None,
                       crs: Annotated[str | None, Query(description="Output CRS")] = None
                       ) -> Response:
            """One feature of a layer by its id (fields the caller may see)."""
            fmt = negotiate(request, f)
            out = req.parse_api_crs(crs)
            fid = features.feature_id(layer, feature_id)
            row = None
            if fid is not None:
                q = features.ItemsQuery(limit=1, crs=out, principal=principal)
                row = await _guard(pool.fetchrow(features.item_sql(layer, q), fid))
            if row is None:
                raise FeatureNotFound(f"no feature {feature_id!r} in collection {layer.id!r}")
            base = base_url(request, settings)
            href = f"{base}/collections/{layer.id}/items/{feature_id}"
            feature = json.loads(row[0])
            if fmt == "html":
                svg = svg_map([feature]) if out == CRS84 else ""
                return html_page("item.html", request, settings, layer=layer,
                                 feature=feature, svg=svg)
            feature["links"] = [
                _link(href + (f"?{urlencode({'crs': crs})}" if crs else ""), "self"),
                _link(f"{href}?f=html", "alternate", "text/html"),
                _link(f"{base}/collections/{layer.id}", "collection", "application/json")]
            return Response(json.dumps(feature, ensure_ascii=False), media_type=GEOJSON,
                            headers={"Content-Crs": f"<{out.uri}>",
                                     **({"ETag": row[1]} if row[1] else {})})

    @staticmethod
    async def _download(pool: asyncpg.Pool, layer: Layer, q: features.ItemsQuery,
                        fmt: str) -> Response:
        """Every matching feature (no limit) as CSV or GeoPackage, streamed."""
        # Files carry x/y (lon/lat) order whatever the CRS; EPSG:4326 is written as CRS84.
        q2 = features.ItemsQuery(**{**q.__dict__, "crs": req.ApiCRS(q.crs.srid)})
        sql, params = features.stream_sql(layer, q2)
        fields = (list(q.properties) if q.properties is not None
                  else visible_fields(layer, principal=q.principal))
        types = {f.name: f.type for f in layer.fields if f.name in fields}
        return await export_response(_stream(pool, sql, params), fmt, fields, layer.id,
                                     crs=f"EPSG:{q.crs.srid}", types=types,
                                     geometry_type=layer.geometry_type)
