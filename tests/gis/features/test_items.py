"""The items page's SQL (gis.features.items) against PostGIS: the bbox stays exact with the
inner-box shortcut, the page's prepared statement keeps one generic plan, and a CQL2 filter
with a bbox reads the GiST index alone."""

from __future__ import annotations

import asyncio
import json

import asyncpg
from shapely.geometry import box

from gis.auth import PUBLIC
from gis.features import items
from gis.features.cql2 import parse_filter
from gis.features.request import CRS84
from gis.settings import Settings
from layers import VECTOR_LAYERS

PARCELS = VECTOR_LAYERS["parcels"]
# A float4 number near Huế's longitude and the spacing of float4 numbers there (2^-17): the
# GiST boxes that ``&&`` and ``@`` compare hold coordinates rounded outwards to it.
GRID, ULP = 107.59375, 2.0 ** -17
# The box's east edge halfway between two float4 numbers: rounded outwards, its float4 box
# reaches GRID + ULP, and so does the box of a parcel just beyond the edge. Everything lies
# within the demo parcels' extent: the rolled-back rows' index entries stay in the GiST
# index until a vacuum, and its root box is the layer's extent for other tests (WMS).
WEST, SOUTH, EAST, NORTH = 107.585, 16.455, GRID + ULP / 2, 16.465


def _page_ids(dsn: str, parcels: dict[str, box], bbox: tuple[float, ...]) -> list[str]:
    """The parcel numbers of the first page within ``bbox`` of the parcels ``parcels``
    (inserted for the query only, rolled back), read through :func:`items.page_sql`."""
    q = items.ItemsQuery(limit=1000, bbox=bbox, bbox_crs=CRS84, crs=CRS84,
                         equals=(("source", "test-inner-box"),), principal=PUBLIC)

    async def run() -> list[str]:
        conn = await asyncpg.connect(dsn)
        try:
            tr = conn.transaction()
            await tr.start()
            for no, g in parcels.items():
                await conn.execute(
                    "INSERT INTO land_parcels (parcel_no, map_sheet_no, land_use, ward_code, "
                    "source, geom) VALUES ($1, '1', 'ODT', 'TEST', 'test-inner-box', "
                    "ST_Multi(ST_GeomFromText($2, 4326)))", no, g.wkt)
            for scan_once in (True, False):
                sql, params = items.page_sql(PARCELS, q, 10_000, scan_once=scan_once)
                text, *_ = await conn.fetchrow(sql, *params)
                got = sorted(f["properties"]["parcel_no"]
                             for f in json.loads(b"[%s]" % (text or b"")))
                if scan_once:
                    first = got
                assert got == first
            await tr.rollback()
            return first
        finally:
            await conn.close()
    return asyncio.run(run())


def test_bbox_stays_exact_at_float4_precision(demo_settings: Settings) -> None:
    """A parcel 1 cm beyond the box's edge has the same float4 box edge as the box: only
    the exact test can leave it out. Parcels inside (some within a metre of the edges)
    come back, and a box too small for the inner box is exact too."""
    d = 1e-5  # about a metre
    parcels = {
        "inside": box(WEST + 0.002, SOUTH + 0.002, WEST + 0.003, SOUTH + 0.003),
        "inside at the edge": box(EAST - 0.001, SOUTH + 0.004, EAST, SOUTH + 0.005),
        "a metre from the edge": box(EAST - 0.001, SOUTH + 0.006, EAST - d, SOUTH + 0.007),
        "across the edge": box(EAST - 0.001, SOUTH + 0.008, EAST + 0.001, SOUTH + 0.009),
        "1 cm beyond": box(EAST + 1e-7, SOUTH + 0.002, EAST + 1.5e-6, SOUTH + 0.003),
        "far beyond": box(EAST + 0.002, SOUTH + 0.002, EAST + 0.003, SOUTH + 0.003),
    }
    bbox = (WEST, SOUTH, EAST, NORTH)
    assert items._inner_box(bbox) is not None
    expected = sorted(n for n, g in parcels.items() if g.intersects(box(*bbox)))
    assert expected == sorted(set(parcels) - {"1 cm beyond", "far beyond"})
    assert _page_ids(demo_settings.dsn, parcels, bbox) == expected

    tiny = (EAST - 1e-4, SOUTH + 0.0085, EAST, SOUTH + 0.0086)  # no inner box
    assert items._inner_box(tiny) is None
    assert _page_ids(demo_settings.dsn, parcels, tiny) == sorted(
        n for n, g in parcels.items() if g.intersects(box(*tiny))) == ["across the edge"]


def test_page_keeps_one_generic_plan(demo_settings: Settings) -> None:
    """The page's statement, prepared once per connection by asyncpg, is planned once and
    reused (a generic plan), not planned again for every box."""
    def query(i: int) -> items.ItemsQuery:
        x, y = 107.575 + i * 1e-3, 16.458
        return items.ItemsQuery(limit=100, bbox=(x, y, x + 0.004, y + 0.004), bbox_crs=CRS84,
                                crs=CRS84, principal=PUBLIC)

    async def run() -> tuple[int, int]:
        conn = await asyncpg.connect(demo_settings.dsn)
        try:
            sql, _ = items.page_sql(PARCELS, query(0), 10_000, scan_once=True)
            for i in range(10):
                s, params = items.page_sql(PARCELS, query(i), 10_000, scan_once=True)
                assert s == sql
                await conn.fetchrow(s, *params)
            return await conn.fetchrow(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                "WHERE statement = $1", sql)
        finally:
            await conn.close()
    generic, custom = asyncio.run(run())
    assert generic >= 5 and custom <= 5


def _plan_nodes(plan: dict) -> list[dict]:
    return [plan, *(n for p in plan.get("Plans", []) for n in _plan_nodes(p))]


def test_cql2_and_bbox_page_scans_the_gist_index_only(demo_settings: Settings) -> None:
    """With a CQL2 filter on an indexed field and a 450 m bbox, the page is read through the
    GiST index alone, in the custom plans and in the generic plan a prepared statement keeps:
    not through a BitmapAnd with the land_use index, which reads every matching parcel of
    the whole layer (at 1,000,000 parcels: 1,308 -> 162 req/s, bench/README.md). The same
    statement without the bbox's second ``&&`` must pick that BitmapAnd on these statistics
    (the whole table analyzed: deterministic), so this test would have caught it."""
    x, y = 107.58, 16.46  # central Huế, dense with 'ODT' parcels
    dx, dy = 450 / 2 / 106_700, 450 / 2 / 110_574
    q = items.ItemsQuery(limit=100, bbox=(x - dx, y - dy, x + dx, y + dy), bbox_crs=CRS84,
                         crs=CRS84, filter=parse_filter("land_use = 'ODT' AND area_m2 > 150"),
                         principal=PUBLIC)
    envelope = 't."geom" && ST_MakeEnvelope($1, $2, $3, $4, 4326) AND '

    async def indexes(sql: str, params: list, mode: str) -> set[str]:
        conn = await asyncpg.connect(demo_settings.dsn)
        try:
            await conn.execute("ANALYZE land_parcels")
            await conn.execute(f"SET plan_cache_mode = {mode}")
            stmt = await conn.prepare(f"EXPLAIN (FORMAT JSON) {sql}")
            plan = json.loads(await stmt.fetchval(*params))[0]["Plan"]
        finally:
            await conn.close()
        names = {n.get("Index Name") for n in _plan_nodes(plan)} - {None}
        if any(n["Node Type"] == "BitmapAnd" for n in _plan_nodes(plan)):
            names.add("BitmapAnd")
        return names

    for scan_once in (True, False):
        sql, params = items.page_sql(PARCELS, q, 10_000, scan_once=scan_once)
        regressed = sql.replace(envelope * 2, envelope, 1)
        assert regressed != sql
        for mode in ("force_custom_plan", "force_generic_plan"):
            assert asyncio.run(indexes(sql, params, mode)) == {"land_parcels_geom_gist"}, mode
            assert "BitmapAnd" in asyncio.run(indexes(regressed, params, mode)), mode


def test_one_scan_page_is_the_two_scan_page(demo_settings: Settings) -> None:
    """A first bbox page read once for page and count (its matches kept narrow and the
    page's rows read again by ctid from a table; whole rows from a view) is the page and
    count of the two-scan statement, byte for byte: default order, sortby, properties=,
    and the incidents' public view."""
    bbox = (107.575, 16.458, 107.588, 16.468)
    cases = [(PARCELS, {}), (PARCELS, {"sortby": (("area_m2", True),)}),
             (PARCELS, {"properties": ("land_use",), "sortby": (("land_use", False),)}),
             (VECTOR_LAYERS["incidents"], {})]

    async def run() -> None:
        conn = await asyncpg.connect(demo_settings.dsn)
        try:
            for layer, extra in cases:
                q = items.ItemsQuery(limit=10, bbox=bbox, bbox_crs=CRS84, crs=CRS84,
                                     principal=PUBLIC, **extra)
                once, twice = [tuple(await conn.fetchrow(*_args(items.page_sql(
                    layer, q, 10_000, scan_once=s)))) for s in (True, False)]
                assert once == twice and once[0] and once[1] == 11, (layer.id, extra)
        finally:
            await conn.close()
    asyncio.run(run())


def _args(sql_params: tuple[str, list]) -> list:
    sql, params = sql_params
    return [sql, *params]
