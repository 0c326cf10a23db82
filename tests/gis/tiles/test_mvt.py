"""MVT from PostGIS: detail, generalized views, size budget — checked against shapely/pyproj."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import mapbox_vector_tile
import morecantile
import numpy as np
import psycopg
import pytest
import shapely
from pyproj import Transformer

from gis.settings import Settings
from gis.tiles import generalize, mvt
from layers import VECTOR_LAYERS
from tests.common import DAI_NOI_LONLAT

WMQ = morecantile.tms.get("WebMercatorQuad")
CENTRE = (107.585, 16.463)  # the densest part of the demo parcels
TO_3857 = Transformer.from_crs(4326, 3857, always_xy=True)


def _tile(dsn: str, layer_id: str, z: int, lonlat=CENTRE, tms: str = "WebMercatorQuad",
          **kw) -> tuple[bytes, morecantile.Tile]:
    t = morecantile.tms.get(tms).tile(*lonlat, z)

    async def run() -> bytes:
        conn = await asyncpg.connect(dsn)
        try:
            return await mvt.layer_tile(conn, VECTOR_LAYERS[layer_id], tms, z, t.x, t.y, **kw)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:  # its own loop, even if one runs in this thread
        return pool.submit(asyncio.run, run()).result(), t


def _features(data: bytes, layer_id: str) -> list[dict]:
    return mapbox_vector_tile.decode(data)[layer_id]["features"] if data else []


@pytest.fixture(scope="module")
def dsn(demo_settings: Settings) -> str:
    return demo_settings.dsn


def _a_parcel_point(dsn: str) -> tuple[float, float]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p "
                            "FROM land_parcels ORDER BY id LIMIT 1) s").fetchone()


def test_detail_tile_has_public_fields_and_ids(dsn: str) -> None:
    data, _ = _tile(dsn, "parcels", 18, lonlat=_a_parcel_point(dsn))
    feats = _features(data, "parcels")
    assert len(feats) >= 1
    assert all(isinstance(f["id"], int) for f in feats)
    assert {"parcel_no", "land_use", "area_m2"} <= set(feats[0]["properties"])
    assert not any("owner_name" in f["properties"] for f in feats)


def test_parcels_are_land_use_blocks_at_z11_to_13(dsn: str) -> None:
    for z in (11, 12, 13):
        feats = _features(_tile(dsn, "parcels", z)[0], "parcels")
        assert feats, z
        assert set(feats[0]["properties"]) <= {"land_use", "parcels", "area_m2"}
    assert _tile(dsn, "parcels", 10)[0] == b""
    with psycopg.connect(dsn) as conn:
        total, blocks = conn.execute(
            "SELECT (SELECT count(*) FROM land_parcels), (SELECT sum(parcels) "
            "FROM tiles_parcel_blocks)").fetchone()
        assert total == blocks  # every parcel is in exactly one block
        # One block against shapely's union of its parcels, computed independently.
        cx, cy, lu, area = conn.execute(
            "SELECT cx, cy, land_use, ST_Area(geom_3857) FROM tiles_parcel_blocks "
            "ORDER BY parcels DESC LIMIT 1").fetchone()
        rows = conn.execute(
            "SELECT ST_AsBinary(geom) FROM land_parcels WHERE land_use = %s", (lu,)).fetchall()
    cell = 40075016.685578488 / 65536
    mine = []
    for (wkb,) in rows:
        g = shapely.transform(shapely.from_wkb(wkb),
                              lambda xy: list(zip(*TO_3857.transform(*xy.T), strict=True)))
        minx, miny, maxx, maxy = g.bounds
        if (int(((minx + maxx) / 2 + 20037508.342789244) // cell) == cx
                and int((20037508.342789244 - (miny + maxy) / 2) // cell) == cy):
            mine.append(g)
    assert mine
    assert area == pytest.approx(shapely.union_all(mine).area, rel=0.01)


def test_incidents_cluster_below_z15_with_counts(dsn: str) -> None:
    z = 12
    data, t = _tile(dsn, "incidents", z, DAI_NOI_LONLAT)
    feats = _features(data, "incidents")
    assert feats and all(set(f["properties"]) == {"count", "category"} for f in feats)
    # The clusters' counts add up to the incidents inside the tile (pyproj + shapely).
    b = WMQ.xy_bounds(t)
    with psycopg.connect(dsn) as conn:
        pts = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM incidents").fetchall()
    xs, ys = TO_3857.transform([p[0] for p in pts], [p[1] for p in pts])
    inside = sum(1 for x, y in zip(xs, ys, strict=True)
                 if b.left <= x < b.right and b.bottom <= y < b.top)
    assert sum(f["properties"]["count"] for f in feats) == pytest.approx(inside, abs=2)
    assert len(feats) <= 256
    # Detail from z15, without the long description until z17.
    det = _features(_tile(dsn, "incidents", 15, DAI_NOI_LONLAT)[0], "incidents")
    assert det and all("ref" in f["properties"] for f in det)
    assert not any("description" in f["properties"] for f in det)
    assert not any(k.startswith("reporter") for f in det for k in f["properties"])
    assert mvt.tile_fields(VECTOR_LAYERS["incidents"], 17).count("description") == 1


def test_wards_are_simplified_per_zoom_and_never_vanish(dsn: str) -> None:
    def vertices(feats: list[dict]) -> int:
        return sum(len(shapely.geometry.shape(f["geometry"]).exterior.coords)
                   if f["geometry"]["type"] == "Polygon" else
                   sum(len(p.exterior.coords) for p in shapely.geometry.shape(f["geometry"]).geoms)
                   for f in feats)

    low = _features(_tile(dsn, "wards", 6)[0], "wards")
    assert len(low) == 40
    assert {f["properties"]["gso_code"] for f in low} >= {"19753"}
    high = _features(_tile(dsn, "wards", 10)[0], "wards")
    # The same wards hold fewer vertices at z6 than at z10 (simplified per zoom).
    z6_share = [f for f in low if f["properties"]["gso_code"] in
                {g["properties"]["gso_code"] for g in high}]
    assert vertices(z6_share) < vertices(high)
    for z in range(6, 18):  # every zoom from 6 has wards
        assert _features(_tile(dsn, "wards", z)[0], "wards"), z
    assert generalize.zoom_range(VECTOR_LAYERS["incidents"])[0] == 6


def test_size_budget_drops_the_smallest_parcels_first(dsn: str) -> None:
    full, _ = _tile(dsn, "parcels", 15)
    budget = len(full) // 4
    small, _ = _tile(dsn, "parcels", 15, max_bytes=budget)
    assert 0 < len(small) <= budget
    kept = _features(small, "parcels")
    everything = _features(full, "parcels")
    kept_ids = {f["id"] for f in kept}
    # z15 tiles carry the land use alone: the areas come from the table, checked with pyproj.
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT id, ST_AsBinary(geom) FROM land_parcels WHERE id = ANY(%s)",
                            ([f["id"] for f in everything],)).fetchall()
    area = {i: _area_m2(shapely.from_wkb(bytes(g))) for i, g in rows}
    dropped = [area[f["id"]] for f in everything if f["id"] not in kept_ids]
    assert kept and dropped
    # The smallest dropped first (stored areas ranked; compared on geodesic ones, ~0.1 %).
    assert min(area[f["id"]] for f in kept) >= 0.99 * max(dropped)


def _area_m2(geom: shapely.Geometry) -> float:
    """Geodesic area on the WGS 84 ellipsoid (pyproj), independent of PostGIS."""
    from pyproj import Geod

    return abs(Geod(ellps="WGS84").geometry_area_perimeter(geom)[0])


def test_dense_zooms_carry_what_the_map_draws(dsn: str) -> None:
    """Below parcels' ``lean_until`` (18) a tile carries what the map draws: the land use
    (the fill colour), from z17 the parcel number (the label), and the id; from 18 every
    public field, never a private one."""
    for z, drawn in ((14, {"land_use"}), (15, {"land_use"}), (16, {"land_use"}),
                     (17, {"land_use", "parcel_no"})):
        feats = _features(_tile(dsn, "parcels", z)[0], "parcels")
        assert feats and all(set(f["properties"]) <= drawn for f in feats), z
        assert any(set(f["properties"]) == drawn for f in feats), z
        assert all(isinstance(f["id"], int) for f in feats)
    full = _features(_tile(dsn, "parcels", 18, lonlat=_a_parcel_point(dsn))[0], "parcels")
    assert {"parcel_no", "map_sheet_no", "land_use", "area_m2", "ward_code"} <= set(
        full[0]["properties"])
    assert mvt.tile_fields(VECTOR_LAYERS["parcels"], 15) == ["land_use"]


def test_feature_cap_keeps_the_largest(dsn: str) -> None:
    capped, _ = _tile(dsn, "parcels", 17, max_features=5)
    kept = _features(capped, "parcels")
    assert len(kept) == 5
    everything = _features(_tile(dsn, "parcels", 17)[0], "parcels")
    with psycopg.connect(dsn) as conn:  # z17 tiles carry no area: read it by id
        area = dict(conn.execute("SELECT id, area_m2 FROM land_parcels WHERE id = ANY(%s)",
                                 ([f["id"] for f in everything],)).fetchall())
    top = sorted((area[f["id"]] for f in everything), reverse=True)[:5]
    assert sorted((area[f["id"]] for f in kept), reverse=True) == pytest.approx(top, rel=0.01)


def test_world_crs84_quad_tiles(dsn: str) -> None:
    data, t = _tile(dsn, "parcels", 15, tms="WorldCRS84Quad")
    feats = _features(data, "parcels")
    assert feats
    b = morecantile.tms.get("WorldCRS84Quad").bounds(t)
    with psycopg.connect(dsn) as conn:
        n = conn.execute("SELECT count(*) FROM land_parcels WHERE ST_Intersects(geom, "
                         "ST_MakeEnvelope(%s, %s, %s, %s, 4326))",
                         (b.left, b.bottom, b.right, b.top)).fetchone()[0]
    assert len(feats) >= n  # plus the ones in the buffer


def test_empty_and_out_of_range() -> None:
    from gis.errors import InvalidTile, TileMatrixSetNotFound

    with pytest.raises(TileMatrixSetNotFound):
        mvt.tile_matrix_set("EuropeanETRS89_LAEAQuad")
    with pytest.raises(InvalidTile):
        mvt.check_tile(WMQ, 25, 0, 0)
    with pytest.raises(InvalidTile):
        mvt.check_tile(WMQ, 3, 0, 8)
    assert mvt.plan(VECTOR_LAYERS["parcels"], "WebMercatorQuad", 5, 0, 0) is None


def _reference(dsn: str, z: int, t: morecantile.Tile) -> bytes:
    """The parcels' tile with ST_AsMVTGeom for every feature whose box meets the tile (the
    textbook query; the fast path skips ST_AsMVTGeom for those inside the buffer)."""
    env, _ = mvt.tile_bounds(WMQ, z, t.x, t.y)
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "WITH m AS (SELECT ST_AsMVTGeom(geom_3857, ST_MakeEnvelope(%s, %s, %s, %s, 3857)"
            "::box2d, 4096, 64, true) AS g, id FROM land_parcels WHERE geom_3857 && "
            "ST_MakeEnvelope(%s, %s, %s, %s, 3857)) SELECT ST_AsMVT(m.*, 'parcels', 4096, "
            "'g', 'id') FROM m", (*env, *env)).fetchone()[0]


@pytest.mark.parametrize("z", [16, 17])
def test_unclipped_features_equal_st_asmvtgeom(dsn: str, z: int) -> None:
    """Features inside the buffered tile skip ST_AsMVTGeom (one affine + snap): the same
    shapes within the one-unit grid (ST_AsMVTGeom also drops vertices that are collinear
    at half a unit), the same ring orientation (a wrong winding would decode as holes)."""
    data, t = _tile(dsn, "parcels", z)
    mine = {f["id"]: shapely.geometry.shape(f["geometry"]) for f in _features(data, "parcels")}
    ref = {f["id"]: shapely.geometry.shape(f["geometry"])
           for f in _features(bytes(_reference(dsn, z, t)), "parcels")}
    assert len(mine) > 20 and set(mine) == set(ref)
    same = 0
    for fid, g in ref.items():
        assert shapely.hausdorff_distance(mine[fid], g) <= 1.0, fid
        assert mine[fid].is_valid and abs(mine[fid].area - g.area) <= g.length, fid
        same += mine[fid].normalize().equals_exact(g.normalize(), 0)
    assert same > len(ref) / 2  # most of them vertex for vertex


def _first_query(dsn: str, layer_id: str, z: int, at_most: int):
    layer, t = VECTOR_LAYERS[layer_id], WMQ.tile(*CENTRE, z)

    async def run():
        conn = await asyncpg.connect(dsn)
        try:
            p = mvt.plan(layer, "WebMercatorQuad", z, t.x, t.y, at_most=at_most)
            return await conn.fetchrow(p.sql, *p.args)
        finally:
            await conn.close()

    return asyncio.run(run())


def test_a_tile_over_the_count_is_counted_not_built(dsn: str) -> None:
    """The first query of a tile without a stored size (points) counts and builds nothing
    past ``at_most``, so a tile far over budget goes straight to its reduction (thinning)."""
    full = _first_query(dsn, "incidents", 16, 1_000_000)
    assert full[0] is not None and full[1] > 20
    over = _first_query(dsn, "incidents", 16, 10)
    assert over[0] is None and over[1] == full[1]  # points: every one counted


def test_polygons_are_ranked_by_their_stored_area_in_one_pass(dsn: str) -> None:
    """Parcels (stored ``area_m2``) are built from their ``at_most`` largest at once."""
    full = _first_query(dsn, "parcels", 16, 1_000_000)
    assert full[0] is not None and full[1] > 100
    top = _first_query(dsn, "parcels", 16, 10)
    assert top[1] == 10
    ids = [f["id"] for f in _features(bytes(top[0]), "parcels")]
    with psycopg.connect(dsn) as conn:
        everything = [f["id"] for f in _features(bytes(full[0]), "parcels")]
        largest = conn.execute("SELECT id FROM land_parcels WHERE id = ANY(%s) "
                               "ORDER BY area_m2 DESC, id LIMIT 10", (everything,)).fetchall()
    assert sorted(ids) == sorted(i for i, in largest)
    # The feature cap holds through the whole path.
    small, _ = _tile(dsn, "parcels", 16, max_features=10)
    assert 0 < len(_features(small, "parcels")) <= 10
    # Reduced at once or not, a tile's bytes depend on nothing but the tile and the budget.
    budget = len(full[0]) // 5
    first, _ = _tile(dsn, "parcels", 16, max_bytes=budget)
    _tile(dsn, "parcels", 15)
    assert _tile(dsn, "parcels", 16, max_bytes=budget)[0] == first and len(first) <= budget


def test_shaped_tables_store_oriented_rings_and_spans(dsn: str) -> None:
    """Migration 0011: every polygon layer drawn in detail stores its Web Mercator rings
    clockwise and the shorter side of their box (checked with pyproj and shapely)."""
    detail = {layer.table for layer in VECTOR_LAYERS.values() if layer.is_polygonal and any(
        generalize.mode_at(layer, z) == "detail" for z in range(mvt.MAX_ZOOM + 1))}
    assert detail == {"land_parcels", "construction"}
    with psycopg.connect(dsn) as conn:
        for table in sorted(detail):
            rows = conn.execute(
                f"SELECT ST_AsBinary(geom), ST_AsBinary(geom_3857), geom_3857_span "  # noqa: S608
                f"FROM {table} ORDER BY id LIMIT 300").fetchall()
            assert rows, table
            for g, stored, span in rows:
                shape = shapely.from_wkb(bytes(stored))
                for poly in getattr(shape, "geoms", [shape]):
                    assert not poly.exterior.is_ccw  # clockwise in world coordinates
                    assert all(ring.is_ccw for ring in poly.interiors)
                mine = shapely.transform(shapely.from_wkb(bytes(g)),
                                         lambda xy: np.column_stack(TO_3857.transform(*xy.T)))
                assert shapely.equals_exact(shapely.normalize(mine), shapely.normalize(shape),
                                            tolerance=0.01)
                x0, y0, x1, y1 = mine.bounds
                assert span == pytest.approx(min(x1 - x0, y1 - y0), rel=1e-6, abs=1e-3)
