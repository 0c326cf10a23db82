"""Features of a vector layer as GeoJSON, built in PostGIS from the layer's declaration.

One small function per clause (select, where, order, keyset seek), as tipg does:
:func:`items_sql` for the rows of a page, :func:`page_sql` for a whole page in one row (the
features already joined as GeoJSON text, the cursors of its ends and ``numberMatched``: one
round trip, nothing parsed in Python), :func:`stream_sql` for a download (no limit),
:func:`count_sql` / :func:`explain_sql` for ``numberMatched``, :func:`item_sql` for one
feature by id.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from gis.auth import PUBLIC, Principal
from gis.errors import InvalidParameter
from gis.features.cql2 import Scope, SQLParams, compile_filter
from gis.features.request import CRS84, ApiCRS, TimeRange, coerce, parse_feature_id
from gis.sqlbuild import id_is_integer, ident, literal, source_ref, table_ref, visible_fields
from layers import Layer

GEOJSON_DECIMALS = 7  # ~1 cm at Huế's latitude
ALIAS = "t"


@dataclass(frozen=True)
class ItemsQuery:
    """A validated items request (every value already parsed and checked)."""

    limit: int
    offset: int = 0
    # (minx, miny, maxx, maxy) in ``bbox_crs`` x/y order.
    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: ApiCRS = CRS84
    # Keyset cursors (what ``next`` and ``prev`` links use, so deep pages cost the same as
    # the first one): the sort keys and id of a feature (see :func:`parse_cursor`); the page
    # holds the features after it, or (``before``) the ``limit`` features just before it.
    after: Any = None
    before: Any = None
    when: TimeRange | None = None
    equals: tuple[tuple[str, Any], ...] = ()
    filter: Any = None  # a pygeofilter AST
    filter_crs: ApiCRS = CRS84
    properties: tuple[str, ...] | None = None  # None: every visible field
    sortby: tuple[tuple[str, bool], ...] = ()
    crs: ApiCRS = CRS84
    principal: Principal = field(default=PUBLIC)

    @property
    def default_order(self) -> bool:
        return not self.sortby


def _col(name: str) -> str:
    return f"{ALIAS}.{ident(name)}"


def geometry_sql(layer: Layer, crs: ApiCRS) -> str:
    """The layer's geometry as GeoJSON text in ``crs`` (EPSG:4326: latitude first)."""
    g = _col(layer.geometry_column)
    if crs.srid != 4326:
        g = f"ST_Transform({g}, {int(crs.srid)})"
    elif crs.lat_first:
        g = f"ST_FlipCoordinates({g})"
    return f"COALESCE(ST_AsGeoJSON({g}, {crs.decimals}), 'null')"


def _properties(layer: Layer, q: ItemsQuery) -> list[str] | tuple[str, ...]:
    """The fields a feature of the response carries (``properties=`` or every visible one)."""
    return (q.properties if q.properties is not None
            else visible_fields(layer, principal=q.principal))


def _page_columns(layer: Layer, q: ItemsQuery) -> list[str]:
    """The columns a page's features and cursors are built from: the id, the sort keys,
    the geometry and the response's fields; the rows sorted for a page carry these only
    (not ``*``: the top-N sort copies each row it keeps)."""
    return list(dict.fromkeys([layer.id_column, *(n for n, _ in q.sortby),
                               layer.geometry_column, *_properties(layer, q)]))


def feature_sql(layer: Layer, q: ItemsQuery) -> str:
    """One GeoJSON Feature as text, chosen visible fields only: PostGIS's GeoJSON text is
    put in place as it is (no ``::json`` round trip through PostgreSQL's JSON parser)."""
    names = _properties(layer, q)
    props = ", ".join(f"{literal(n)}, {_col(n)}" for n in names)
    return (f"('{{\"type\": \"Feature\", \"id\": ' || to_json({_col(layer.id_column)})::text"
            f" || ', \"geometry\": ' || {geometry_sql(layer, q.crs)}"
            f" || ', \"properties\": ' || json_build_object({props})::text || '}}')")


def where_sql(layer: Layer, q: ItemsQuery, params: SQLParams, estimate: bool = False
              ) -> list[str]:
    """The conditions of a request (bbox exact, datetime, equality, CQL2), no paging.
    ``estimate``: for the planner's row estimate only (no inner-box shortcut, which the
    planner's statistics do not read as it reads ``ST_Intersects``)."""
    where: list[str] = []
    geom = _col(layer.geometry_column)
    if q.bbox is not None:
        vals = [params.add(v) for v in q.bbox]
        env = f"ST_MakeEnvelope({', '.join(vals)}, {int(q.bbox_crs.srid)})"
        if q.bbox_crs.srid != 4326:  # edges densified so the transformed box stays exact
            env = (f"ST_Transform(ST_Segmentize({env}, ({vals[2]} - {vals[0]}) / 32.0), 4326)")
        # && finds candidates in the GiST index; ST_Intersects keeps only those that touch.
        exact = f"ST_Intersects({geom}, {env})"
        inner = _inner_box(q.bbox) if q.bbox_crs.srid == 4326 and not estimate else None
        if inner is not None:  # most candidates lie inside: no GEOS for them
            box = f"ST_MakeEnvelope({', '.join(params.add(v) for v in inner)}, 4326)"
            # The second && stands for the one ST_Intersects's support function adds: the
            # planner's estimates (and so its choice of the GiST index) stay as before.
            exact = f"{geom} && {env} AND (({geom} @ (SELECT {box})) IS TRUE OR {exact})"
        where.append(f"({geom} && {env} AND {exact})")
    if q.when is not None:
        if layer.temporal is None:
            raise InvalidParameter(f"collection {layer.id!r} has no temporal property: "
                                   "datetime does not apply")
        col = _col(layer.temporal)
        r = q.when
        if r.lo is not None:
            where.append(f"{col} >= {params.add(r.lo)}::timestamptz")
        if r.hi is not None:
            where.append(f"{col} {'<=' if r.hi_inclusive else '<'} "
                         f"{params.add(r.hi)}::timestamptz")
    for name, value in q.equals:
        where.append(f"{_col(name)} = {params.add(value)}")
    if q.filter is not None:
        scope = Scope(layer, visible_fields(layer, principal=q.principal), ALIAS, q.filter_crs)
        where.append(compile_filter(q.filter, scope, params))
    return where


# Margin (degrees) of the inner box of a lon/lat bbox: more than the spacing of float4
# numbers up to 180 (1.5e-5), the precision of the GiST boxes that ``@`` compares.
_FLOAT4_MARGIN = 1e-4


def _inner_box(bbox: tuple[float, ...]) -> tuple[float, float, float, float] | None:
    """The lon/lat ``bbox`` shrunk by :data:`_FLOAT4_MARGIN` on every side (None when it is
    too small to shrink). A feature whose box (float4, rounded outwards) lies ``@`` inside
    it lies inside ``bbox`` for certain, so it intersects ``bbox`` without GEOS's exact test:
    only the features across the edges need it (0.28 of 1.4 ms per 450 m page)."""
    x0, y0, x1, y1 = bbox[:4]
    m = _FLOAT4_MARGIN
    if x1 - x0 <= 2 * m or y1 - y0 <= 2 * m:
        return None
    return x0 + m, y0 + m, x1 - m, y1 - m


def _keys(layer: Layer, q: ItemsQuery) -> list[tuple[str, bool]]:
    """The order's (column, descending) keys: the sort keys, then the id."""
    return [*((_col(n), d) for n, d in q.sortby), (_col(layer.id_column), False)]


def order_sql(layer: Layer, q: ItemsQuery, reverse: bool = False) -> str:
    """``ORDER BY`` the sort keys, then the id (so pages are deterministic); nulls last.
    ``reverse``: the exact opposite order (a page read backwards from a ``before`` cursor)."""
    def one(col: str, desc: bool) -> str:
        if reverse:
            return f"{col} {'ASC NULLS FIRST' if desc else 'DESC NULLS FIRST'}"
        return f"{col} {'DESC NULLS LAST' if desc else 'ASC NULLS LAST'}"
    keys = [one(c, d) for c, d in _keys(layer, q)]
    if not reverse:  # the id never is null, and ascending is its index's own order
        keys[-1] = _keys(layer, q)[-1][0]
    return " ORDER BY " + ", ".join(keys)


def seek_sql(layer: Layer, q: ItemsQuery, cursor: tuple, params: SQLParams,
             forward: bool = True) -> str:
    """Rows strictly after (``forward``) or before ``cursor`` (the sort keys and id of a row)
    in the order of :func:`order_sql`: a lexicographic comparison, nulls last. On the default
    order it is ``id > $n``, a seek in the primary key.

    >>> from layers import VECTOR_LAYERS
    >>> b = SQLParams()
    >>> seek_sql(VECTOR_LAYERS['parcels'], ItemsQuery(limit=5, sortby=(('area_m2', True),)),
    ...          (120.5, 7), b)
    '((t."area_m2" < $1 OR t."area_m2" IS NULL) OR (t."area_m2" = $2 AND t."id" > $3))'
    """
    terms, equal = [], []
    keys = _keys(layer, q)
    if len(cursor) != len(keys):
        raise InvalidParameter("the cursor does not match the sort order")
    for i, ((col, desc), value) in enumerate(zip(keys, cursor, strict=True)):
        if value is None:  # nulls come last: after a null only nulls (then by id)
            beyond = None if forward else f"{col} IS NOT NULL"
        else:
            op = ">" if forward != desc else "<"
            v = params.add(value)
            beyond = f"({col} {op} {v} OR {col} IS NULL)" if forward else f"{col} {op} {v}"
            if col == _col(layer.id_column):
                beyond = f"{col} {op} {v}"
        if beyond is not None:
            terms.append(" AND ".join([*equal, beyond]))
        if i < len(keys) - 1:
            equal.append(f"{col} IS NULL" if value is None else f"{col} = {params.add(value)}")
    if len(terms) == 1:
        return terms[0]
    return "(" + " OR ".join(f"({t})" if " AND " in t else t for t in terms) + ")"


def key_sql(layer: Layer, q: ItemsQuery) -> str:
    """JSON text of a row's cursor: its sort keys and id."""
    return f"json_build_array({', '.join(c for c, _ in _keys(layer, q))})::text"


def _from_where(layer: Layer, q: ItemsQuery, where: list[str]) -> str:
    return (f" FROM {source_ref(layer, q.principal)} AS {ALIAS}"
            + (" WHERE " + " AND ".join(where) if where else ""))


def items_sql(layer: Layer, q: ItemsQuery, params: SQLParams | None = None,
              where: list[str] | None = None, source: str | None = None
              ) -> tuple[str, list[object]]:
    """SQL returning one GeoJSON Feature (text) per row, visible fields only.

    Each row is ``(feature_text, id, cursor, n)``: the cursor is the JSON of the row's sort
    keys and id, ``n`` its rank in the page (1 nearest to the cursor; a ``before`` page is
    read backwards). One row more than ``limit`` is fetched so the caller knows whether a
    further page exists. On the default order (by id), an ``offset`` becomes a keyset seek:
    the id at that offset is found from the index alone (no features built for the skipped
    rows), then the page starts there.

    Example
    -------
    >>> from layers import VECTOR_LAYERS
    >>> sql, params = items_sql(VECTOR_LAYERS['health'], ItemsQuery(limit=10, after=(5,)))
    >>> params
    [5, 11]
    """
    params = params or SQLParams()
    idcol = _col(layer.id_column)
    where = list(where_sql(layer, q, params) if where is None else where)
    if q.after is not None:
        where.append(seek_sql(layer, q, _cursor(q.after), params))
    if q.before is not None:
        where.append(seek_sql(layer, q, _cursor(q.before), params, forward=False))
    limit = params.add(q.limit + 1)
    if q.offset and q.default_order:
        seek = (f"SELECT {idcol}{_from_where(layer, q, where)} ORDER BY {idcol} "
                f"OFFSET {params.add(q.offset)} LIMIT 1")
        where = [*where, f"{idcol} >= ({seek})"]
    elif q.offset:
        # Deferred join: the page's ids are sorted and skipped without building features.
        page = (f"SELECT {idcol}{_from_where(layer, q, where)}{order_sql(layer, q)} "
                f"LIMIT {limit} OFFSET {params.add(q.offset)}")
        where = [*where, f"{idcol} = ANY(ARRAY({page}))"]
    order = order_sql(layer, q, reverse=q.before is not None)
    # The rows of the page first (a bounded top-N sort), then their features and cursors:
    # GeoJSON and cursor JSON are built for limit + 1 rows, not for every row the bbox
    # matched before the sort (an expression in the sorted subquery's list is computed for
    # every row that enters the sort: the cursor there cost ~0.2 of 1.5 ms of a 450 m page
    # at 1,000,000 parcels). The rank is taken outside, over those rows only (a window
    # inside would unbound the sort). ``source``: rows already filtered (a page_sql scan),
    # read as they are.
    rows = (f"SELECT {', '.join(_col(c) for c in _page_columns(layer, q))}"
            f"{_from_where(layer, q, where) if source is None else f' FROM {source} AS {ALIAS}'}"
            f"{order} LIMIT {limit}")
    sql = (f"SELECT {feature_sql(layer, q)} AS f, {idcol} AS id, {key_sql(layer, q)} AS k, "
           f"row_number() OVER ({order.strip()}) AS n FROM ({rows}) AS {ALIAS}{order}")
    return sql, params.values


def one_scan(q: ItemsQuery) -> bool:
    """Whether :func:`page_sql` may read the matching rows once for both the page and the
    count: a first page (no offset or cursor) within a bbox, where the index finds every
    match anyway before the sort."""
    return q.bbox is not None and not q.offset and q.after is None and q.before is None


def page_sql(layer: Layer, q: ItemsQuery, cap: int, scan_once: bool = False
             ) -> tuple[str, list[object]]:
    """One row for a whole page: ``(features, fetched, cursors, matched)``.

    ``features`` is the page's GeoJSON Features joined by commas (in display order), as
    UTF-8 bytes (``bytea``): the response's body is bytes, and ~50 KB of text would be
    decoded by asyncpg only to be encoded again (~55 µs a page, a tenth of a worker's
    time per request),
    ``fetched`` how many rows were read (``limit + 1``: there is a further page),
    ``cursors`` the JSON cursors of the page's rows in display order, and ``matched`` the
    exact count of the matching features, read up to ``cap + 1`` rows, when the page alone
    does not tell it (NULL when it does: the page is everything).

    ``scan_once`` (see :func:`one_scan`): the matching rows are read once, at most
    ``cap + 1`` of them, and both the page and the count come from them. When more than
    ``cap`` match, that page is not the right one: the caller asks again without it.
    From a table, the matches are kept narrow (their sort keys and ``ctid``) and the
    page's rows read again by ``ctid`` (see :func:`_found_sql`).
    """
    params = SQLParams()
    where = where_sql(layer, q, params)
    if scan_once:
        found, narrow = _found_sql(layer, q, where, params, cap)
        if narrow:  # the page's rows: the first limit + 1 matches, by their addresses
            top = (f"SELECT {ALIAS}.__tid FROM found AS {ALIAS}{order_sql(layer, q)} "
                   f"LIMIT {params.add(q.limit + 1)}")
            rows, _ = items_sql(layer, q, params, [f"{ALIAS}.ctid = ANY(ARRAY({top}))"])
        else:
            rows, _ = items_sql(layer, q, params, [], source="found")
        head, count = f"WITH found AS MATERIALIZED ({found}), ", "(SELECT count(*) FROM found)"
    else:
        count = f"({_count(layer, q, where, params, cap)})"
        rows, _ = items_sql(layer, q, params, where)
        head = "WITH "
    first = q.limit
    direction = "DESC" if q.before is not None else "ASC"
    paged = q.offset or q.after is not None or q.before is not None
    matched = count if paged else f"CASE WHEN count(*) > {first} THEN {count} END"
    return (f"{head}page AS ({rows}) "
            f"SELECT convert_to(string_agg(f, ',' ORDER BY n {direction}) "
            f"FILTER (WHERE n <= {first}), 'UTF8'), "
            f"count(*), array_agg(k ORDER BY n {direction}) FILTER (WHERE n <= {first}), "
            f"{matched} FROM page", params.values)


def _found_sql(layer: Layer, q: ItemsQuery, where: list[str], params: SQLParams, cap: int
               ) -> tuple[str, bool]:
    """The matches of a one-scan page (at most ``cap + 1``), and whether they are narrow.

    From a table they are narrow: each match's ``ctid`` and sort keys only, so that the
    count and the top-N sort move small tuples instead of whole rows (a 450 m box holds
    ~400 matches for a page of 100: about 0.1 of 1.3 ms per page at 1,000,000 parcels); the
    page's rows are then read again by ``ctid`` (a TID scan of ``limit + 1`` tuples). Both
    reads are one statement under one snapshot, so each ``ctid`` names the very row version
    the first read matched (it cannot be pruned while the snapshot sees it). A view has no
    ``ctid``: its matches are whole rows.
    """
    limit = params.add(cap + 1)
    if source_ref(layer, q.principal) != table_ref(layer):
        return f"SELECT {ALIAS}.*{_from_where(layer, q, where)} LIMIT {limit}", False
    keys = ", ".join(dict.fromkeys(c for c, _ in _keys(layer, q)))
    return (f"SELECT {ALIAS}.ctid AS __tid, {keys}{_from_where(layer, q, where)} "
            f"LIMIT {limit}"), True


def stream_sql(layer: Layer, q: ItemsQuery) -> tuple[str, list[object]]:
    """Every matching feature (no limit or offset), for streamed downloads."""
    params = SQLParams()
    where = where_sql(layer, q, params)
    return (f"SELECT {feature_sql(layer, q)}{_from_where(layer, q, where)}{order_sql(layer, q)}",
            params.values)


def _count(layer: Layer, q: ItemsQuery, where: list[str], params: SQLParams, cap: int) -> str:
    return (f"SELECT count(*) FROM (SELECT 1{_from_where(layer, q, where)} "
            f"LIMIT {params.add(cap + 1)}) AS c")


def count_sql(layer: Layer, q: ItemsQuery, cap: int) -> tuple[str, list[object]]:
    """Count of the matching features, reading at most ``cap + 1`` of them."""
    params = SQLParams()
    return _count(layer, q, where_sql(layer, q, params), params, cap), params.values


def explain_sql(layer: Layer, q: ItemsQuery) -> tuple[str, list[object]]:
    """``EXPLAIN (FORMAT JSON)`` of the matching rows: the planner's estimate of their number
    is ``[0]['Plan']['Plan Rows']``."""
    params = SQLParams()
    where = where_sql(layer, q, params, estimate=True)
    return f"EXPLAIN (FORMAT JSON) SELECT 1{_from_where(layer, q, where)}", params.values


def plan_rows(explain_output: Any) -> int:
    """The estimated row count from ``EXPLAIN (FORMAT JSON)`` output (text or parsed).

    >>> plan_rows('[{"Plan": {"Plan Rows": 1234}}]')
    1234
    """
    doc = json.loads(explain_output) if isinstance(explain_output, str) else explain_output
    return int(doc[0]["Plan"]["Plan Rows"])


def item_sql(layer: Layer, q: ItemsQuery | None = None) -> str:
    """SQL returning one GeoJSON Feature (text) by id (``$1``, of the id column's type, so
    the primary key or unique index answers it), and its ETag (editable layers; else NULL),
    in one index lookup."""
    from gis.features.transactions import etag_sql

    q = q or ItemsQuery(limit=1)
    etag = etag_sql(ALIAS) if layer.editable else "NULL::text"
    return (f"SELECT {feature_sql(layer, q)}, {etag} "
            f"FROM {source_ref(layer, q.principal)} AS {ALIAS} "
            f"WHERE {_col(layer.id_column)} = $1")


def feature_id(layer: Layer, value: str) -> int | str | None:
    """``value`` as the id column's type, or ``None`` (then no feature can match: a 404)."""
    return parse_feature_id(layer, value, id_is_integer(layer))


def extent_sql(layer: Layer, estimated: bool = False) -> str:
    """SQL for the layer's bounding box (xmin, ymin, xmax, ymax) in EPSG:4326.

    ``estimated`` reads the planner statistics (``ST_EstimatedExtent``: instant on big tables
    after ANALYZE; an error on views, NULL without statistics); otherwise the exact extent.
    """
    g = ident(layer.geometry_column)
    if estimated:
        e = (f"ST_EstimatedExtent({literal(layer.schema)}, {literal(layer.table)}, "
             f"{literal(layer.geometry_column)})")
        return f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM {e} AS e"
    return (f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
            f"FROM (SELECT ST_Extent({g})::box2d AS e FROM {table_ref(layer)}) s")


def temporal_extent_sql(layer: Layer) -> str | None:
    """SQL for (min, max) of the layer's temporal field (index-assisted), or ``None``."""
    if layer.temporal is None:
        return None
    c = ident(layer.temporal)
    return f"SELECT min({c})::timestamptz, max({c})::timestamptz FROM {table_ref(layer)}"


def feature_collection(features: list[str], links: list[dict], number_returned: int,
                       number_matched: int | None = None, time_stamp: str | None = None) -> str:
    """Assemble a GeoJSON FeatureCollection from feature texts without re-parsing them."""
    head: dict[str, Any] = {"type": "FeatureCollection"}
    if time_stamp is not None:
        head["timeStamp"] = time_stamp
    if number_matched is not None:
        head["numberMatched"] = number_matched
    head.update({"numberReturned": number_returned, "links": links})
    text = json.dumps(head, ensure_ascii=False)
    return text[:-1] + ', "features": [' + ",".join(features) + "]}"


def feature_collection_bytes(features: bytes | None, links: list[dict], number_returned: int,
                             number_matched: int | None = None, time_stamp: str | None = None
                             ) -> bytes:
    """:func:`feature_collection` of a page's features as UTF-8 bytes (:func:`page_sql`),
    the same text encoded: the features are copied once, never decoded.

    >>> feature_collection_bytes(b'{"id": 1},{"id": 2}', [], 2)[-47:]
    b'"links": [], "features": [{"id": 1},{"id": 2}]}'
    """
    head = feature_collection([], links, number_returned, number_matched, time_stamp)
    return b"".join((head[:-2].encode(), features or b"", b"]}"))


def _cursor(value: Any) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def format_cursor(key_json: str, default_order: bool) -> str:
    """The ``after``/``before`` value of a row from its cursor JSON (:func:`key_sql`): the
    id alone on the default order, else the keys and id as base64url JSON.

    >>> format_cursor('[42]', True), format_cursor('[12.5, 42]', False)
    ('42', 'WzEyLjUsIDQyXQ')
    """
    if default_order:
        return str(json.loads(key_json)[0])
    return base64.urlsafe_b64encode(key_json.encode()).decode().rstrip("=")


def parse_cursor(layer: Layer, value: str, sortby: tuple[tuple[str, bool], ...] = ()
                 ) -> tuple:
    """An ``after``/``before`` cursor as typed values: the sort keys (``sortby``) and id.

    >>> from layers import VECTOR_LAYERS
    >>> parse_cursor(VECTOR_LAYERS['parcels'], '42')
    (42,)
    >>> parse_cursor(VECTOR_LAYERS['parcels'], 'WzEyLjUsIDQyXQ', (('area_m2', True),))
    (12.5, 42)
    """
    if not sortby:
        parsed = feature_id(layer, value)
        if parsed is None:
            raise InvalidParameter(f"after/before must be a feature id (an integer), "
                                   f"got {value!r}")
        return (parsed,)
    bad = InvalidParameter(f"{value!r} is not a cursor of this sortby: use the 'next' and "
                           "'prev' links of a response")
    try:
        keys = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad from None
    if not isinstance(keys, list) or len(keys) != len(sortby) + 1:
        raise bad
    fid = feature_id(layer, str(keys[-1])) if isinstance(keys[-1], int | str) else None
    if fid is None:
        raise bad
    return (*(None if v is None else coerce(layer.field(n), v)
              for (n, _), v in zip(sortby, keys, strict=False)), fid)


def check_limit(limit: int, maximum: int) -> int:
    if not 1 <= limit <= maximum:
        raise InvalidParameter(f"limit must be between 1 and {maximum}, got {limit}")
    return limit


def check_offset(offset: int, maximum: int) -> int:
    """``offset`` within ``0..maximum``; deeper pages must follow the ``next`` links."""
    if offset < 0:
        raise InvalidParameter(f"offset must not be negative, got {offset}")
    if offset > maximum:
        raise InvalidParameter(
            f"offset {offset} is beyond the maximum of {maximum}: follow the 'next' links of "
            "the response (a keyset cursor that costs the same at any depth), or narrow the "
            "request with bbox, datetime or filter")
    return offset
