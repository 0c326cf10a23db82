"""Planners' queries over HTTP, on the demo database, checked against independent
computations: pyproj geodesic distances, shapely + pyproj areas, the terrain model behind the
rasters, and brute-force SQL without the index tricks."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import numpy as np
import pandas as pd
import psycopg
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Geod, Transformer

from api.app import create_app
from gis.raster import Terrain
from gis.settings import Settings
from tests.common import DAI_NOI_LONLAT, HANOI_LONLAT, TRUONG_TIEN_LONLAT

GEOD = Geod(ellps="WGS84")
TO_TM3 = Transformer.from_crs(4326, 9214, always_xy=True)
# A block of central Huế south of the river (lon/lat), about 600 m × 450 m.
BLOCK = shapely.box(107.585, 16.455, 107.5905, 16.459)
pytestmark = pytest.mark.filterwarnings("ignore:.*non conformant file extension")
PRIVATE = ("owner_name", "inspector_notes", "reporter_name", "reporter_phone",
           "reporter_email")


def metric(geom):
    return shapely.transform(geom, lambda c: np.column_stack(TO_TM3.transform(c[:, 0],
                                                                              c[:, 1])))


@pytest.fixture(scope="module")
def client(demo_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(demo_settings)) as c:
        yield c


@pytest.fixture(scope="module")
def demo(demo_settings: Settings) -> Iterator[psycopg.Connection]:
    with psycopg.connect(demo_settings.dsn) as conn:
        yield conn
        conn.rollback()


def points(conn: psycopg.Connection, table: str) -> dict[int, tuple[float, float]]:
    return {i: (x, y) for i, x, y in conn.execute(
        f"SELECT id, ST_X(geom), ST_Y(geom) FROM {table}").fetchall()}


def geodesic(lonlat, pts: dict) -> dict[int, float]:
    ids = list(pts)
    xy = np.array([pts[i] for i in ids])
    _, _, d = GEOD.inv(np.full(len(ids), lonlat[0]), np.full(len(ids), lonlat[1]),
                       xy[:, 0], xy[:, 1])
    return dict(zip(ids, d, strict=True))


def error(resp, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"code", "description"}
    if code:
        assert body["code"] == code
    return body


# ------------------------------------------------------------------------------ what's here
def test_whats_here_at_the_imperial_city(client: TestClient, demo: psycopg.Connection) -> None:
    lon, lat = DAI_NOI_LONLAT
    resp = client.get("/query/whats-here", params={"lon": lon, "lat": lat})
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    ward = demo.execute("SELECT gso_code, name FROM admin_units WHERE level = 'ward' AND "
                        "ST_Contains(geom, ST_Point(%s, %s, 4326))", (lon, lat)).fetchone()
    assert doc["ward"] == {"gso_code": ward[0], "name": ward[1]}
    # Parcels at the point: shapely on every parcel near it.
    near = demo.execute("SELECT id, ST_AsBinary(geom) FROM land_parcels WHERE geom && "
                        "ST_Expand(ST_Point(%s, %s, 4326), 0.01)", (lon, lat)).fetchall()
    expect = sorted(i for i, g in near if shapely.from_wkb(g).intersects(
        shapely.Point(lon, lat)))
    assert sorted(f["id"] for f in doc["parcels"]) == expect
    for f in doc["parcels"]:
        assert {"land_use", "area_m2"} <= set(f["properties"])
        assert not set(PRIVATE) & set(f["properties"])
    # Rasters: the terrain model the COGs were made from, at the centre of the pixel.
    x, y = TO_TM3.transform(lon, lat)
    cx, cy = (np.floor(x / 100) + 0.5) * 100, (np.floor(y / 100) + 0.5) * 100
    t = Terrain(46)
    assert doc["elevation_m"] == pytest.approx(float(t.elevation(np.array([cx]),
                                                                 np.array([cy]))[0]), abs=0.06)
    assert doc["flood_depth_m"] == pytest.approx(float(t.flood_depth(np.array([cx]),
                                                                     np.array([cy]))[0]),
                                                 abs=0.006)
    # Nearest of each kind: brute-force geodesic distances with pyproj.
    for layer, table in (("health", "health_facilities"), ("education",
                                                           "education_facilities"),
                         ("tourism", "tourism_pois")):
        dist = geodesic((lon, lat), points(demo, table))
        best = min(dist, key=dist.get)
        got = doc["nearest"][layer]
        assert got["properties"]["distance_m"] == pytest.approx(dist[best], abs=0.01)
        assert dist[got["id"]] == pytest.approx(dist[best], abs=0.01)


def test_whats_here_documents_its_parameters(client: TestClient) -> None:
    """The handler reads its query itself (the hot path); the OpenAPI page still lists it."""
    op = client.get("/api").json()["paths"]["/query/whats-here"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert set(params) == {"lon", "lat", "point-crs", "crs", "f"}
    assert params["lon"]["required"] and params["lon"]["schema"]["type"] == "number"


def test_whats_here_on_the_river_is_flooded(client: TestClient) -> None:
    doc = client.get("/query/whats-here", params=dict(zip(("lon", "lat"), TRUONG_TIEN_LONLAT,
                                                          strict=True))).json()
    assert doc["flood_depth_m"] > 0.3


def test_whats_here_in_vn2000(client: TestClient) -> None:
    x, y = TO_TM3.transform(*DAI_NOI_LONLAT)
    a = client.get("/query/whats-here", params={"lon": x, "lat": y, "point-crs": "EPSG:9214",
                                                "crs": "EPSG:9214"})
    b = client.get("/query/whats-here", params=dict(zip(("lon", "lat"), DAI_NOI_LONLAT,
                                                        strict=True)))
    assert a.status_code == 200 and a.headers["content-crs"].endswith("/EPSG/0/9214>")
    da, db = a.json(), b.json()
    assert da["ward"] == db["ward"] and da["flood_depth_m"] == db["flood_depth_m"]
    ha, hb = da["nearest"]["health"], db["nearest"]["health"]
    assert ha["id"] == hb["id"]
    px, py = TO_TM3.transform(*hb["geometry"]["coordinates"])
    assert ha["geometry"]["coordinates"] == pytest.approx([px, py], abs=0.01)


# --------------------------------------------------------------------------- nearest, within
def test_nearest_matches_brute_force(client: TestClient, demo: psycopg.Connection) -> None:
    lon, lat = 107.60, 16.47
    resp = client.get("/query/nearest", params={"collection": "tourism", "lon": lon,
                                                "lat": lat, "k": 7})
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/geo+json"
    feats = resp.json()["features"]
    dist = geodesic((lon, lat), points(demo, "tourism_pois"))
    expect = sorted(dist, key=lambda i: (dist[i], i))[:7]
    assert [f["id"] for f in feats] == expect
    got = [f["properties"]["distance_m"] for f in feats]
    assert got == sorted(got)
    assert got == pytest.approx([dist[i] for i in expect], abs=0.01)


def test_nearest_polygons_are_exact(client: TestClient, demo: psycopg.Connection) -> None:
    lon, lat = 107.5931, 16.4532
    feats = client.get("/query/nearest", params={"collection": "parcels", "lon": lon,
                                                 "lat": lat, "k": 12}).json()["features"]
    brute = demo.execute(
        "SELECT id, ST_Distance(geom::geography, ST_Point(%s, %s, 4326)::geography) AS d "
        "FROM land_parcels ORDER BY d, id LIMIT 12", (lon, lat)).fetchall()
    assert [f["id"] for f in feats] == [r[0] for r in brute]
    assert all(set(f["properties"]).isdisjoint(PRIVATE) for f in feats)


def test_within_matches_pyproj(client: TestClient, demo: psycopg.Connection) -> None:
    lon, lat = DAI_NOI_LONLAT
    resp = client.get("/query/within", params={"collection": "health", "lon": lon, "lat": lat,
                                               "distance": 1500})
    feats = resp.json()["features"]
    dist = geodesic((lon, lat), points(demo, "health_facilities"))
    expect = {i for i, d in dist.items() if d <= 1500}
    assert 0 < len(expect) < len(dist)
    assert {f["id"] for f in feats} == expect
    got = [f["properties"]["distance_m"] for f in feats]
    assert got == sorted(got) and max(got) <= 1500
    small = client.get("/query/within", params={"collection": "health", "lon": lon,
                                                "lat": lat, "distance": 1500, "limit": 2})
    assert small.json()["numberReturned"] == 2 and small.json()["limited"] is True


# ------------------------------------------------------------------------------ intersects
def test_intersects_parcels_areas(client: TestClient, demo: psycopg.Connection) -> None:
    geometry = json.loads(shapely.to_geojson(BLOCK))
    resp = client.post("/query/intersects", json={"collection": "parcels",
                                                  "geometry": geometry})
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    rows = demo.execute("SELECT id, land_use, ST_AsBinary(geom) FROM land_parcels WHERE "
                        "geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)", BLOCK.bounds).fetchall()
    block_m = metric(BLOCK)
    # (the query polygon's edges are straight in lon/lat: cut there, then measure in TM-3)
    hits = [(i, use, metric(shapely.from_wkb(g)),
             metric(shapely.from_wkb(g).intersection(BLOCK)).area) for i, use, g in rows
            if shapely.from_wkb(g).intersects(BLOCK)]
    assert len(hits) > 10
    s = doc["summary"]
    assert s["count"] == doc["numberMatched"] == len(hits)
    assert s["total_area_m2"] == pytest.approx(sum(g.area for _, _, g, _ in hits), rel=1e-6)
    assert s["intersection_area_m2"] == pytest.approx(sum(a for *_, a in hits), rel=1e-6)
    assert s["query_area_m2"] == pytest.approx(block_m.area, rel=1e-6)
    by_use: dict[str, float] = {}
    for _, use, _, a in hits:
        by_use[use] = by_use.get(use, 0.0) + a
    got = {g["land_use"]: g["intersection_m2"] for g in doc["by_land_use"]}
    assert got == pytest.approx(by_use, rel=1e-6)
    assert {f["id"] for f in doc["features"]} == {h[0] for h in hits}
    assert all(set(f["properties"]).isdisjoint(PRIVATE) for f in doc["features"])


def test_intersects_in_vn2000_and_limit(client: TestClient) -> None:
    tm3 = json.loads(shapely.to_geojson(metric(BLOCK)))
    a = client.post("/query/intersects?limit=3", json={"collection": "parcels",
                                                       "geometry": tm3,
                                                       "crs": "EPSG:9214"}).json()
    b = client.post("/query/intersects", json={"collection": "parcels", "geometry": tm3},
                    headers={"Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/9214>"}
                    ).json()
    assert a["numberReturned"] == 3 and len(a["features"]) == 3
    assert a["summary"]["count"] == b["summary"]["count"] > 3
    assert a["summary"]["intersection_area_m2"] == pytest.approx(
        b["summary"]["intersection_area_m2"])


def test_intersects_points_layer(client: TestClient, demo: psycopg.Connection) -> None:
    area = shapely.box(107.56, 16.44, 107.62, 16.48)
    doc = client.post("/query/intersects", json={"collection": "tourism",
                                                 "geometry": json.loads(shapely.to_geojson(
                                                     area))}).json()
    expect = [i for i, p in points(demo, "tourism_pois").items()
              if area.intersects(shapely.Point(p))]
    assert doc["summary"]["count"] == len(expect) > 0
    assert doc["summary"]["intersection_area_m2"] == 0


# --------------------------------------------------------------------------- raster queries
def test_raster_value(client: TestClient) -> None:
    lon, lat = TRUONG_TIEN_LONLAT
    doc = client.get("/query/raster-value", params={"raster": "elevation", "lon": lon,
                                                    "lat": lat}).json()
    x, y = TO_TM3.transform(lon, lat)
    cx, cy = (np.floor(x / 100) + 0.5) * 100, (np.floor(y / 100) + 0.5) * 100
    assert doc["units"] == "m"
    assert doc["value"] == pytest.approx(
        float(Terrain(46).elevation(np.array([cx]), np.array([cy]))[0]), abs=0.06)


def test_zonal_stats_against_pixel_centres(client: TestClient) -> None:
    area = shapely.Polygon([(107.57, 16.45), (107.61, 16.445), (107.615, 16.48),
                            (107.575, 16.485)])
    resp = client.post("/query/zonal-stats", json={
        "raster": "flood-depth", "geometry": json.loads(shapely.to_geojson(area)),
        "threshold": 0.5, "percentiles": [50, 90]})
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    # Independent: every 100 m pixel whose centre is in the polygon, from the terrain model.
    m = metric(area)
    x0, y0, x1, y1 = m.bounds
    xs = (np.arange(np.floor(x0 / 100), np.ceil(x1 / 100)) + 0.5) * 100
    ys = (np.arange(np.floor(y0 / 100), np.ceil(y1 / 100)) + 0.5) * 100
    gx, gy = np.meshgrid(xs, ys)
    inside = shapely.contains_xy(m, gx, gy)
    depth = np.round(Terrain(46).flood_depth(gx[inside], gy[inside]), 2)
    assert doc["count"] == inside.sum() > 100
    assert doc["mean"] == pytest.approx(depth.mean(), abs=1e-3)
    assert doc["max"] == pytest.approx(depth.max(), abs=1e-3)
    assert doc["min"] == pytest.approx(depth.min(), abs=1e-3)
    assert doc["percentiles"]["p50"] == pytest.approx(np.percentile(depth, 50), abs=1e-3)
    assert doc["area_above_m2"] == pytest.approx((depth > 0.5).sum() * 10_000, abs=20_000)
    assert doc["area_m2"] == doc["count"] * 10_000


def test_flood_exposure_ranks_parcels(client: TestClient, demo: psycopg.Connection) -> None:
    from gis.features.rasterstats import open_raster

    resp = client.post("/query/flood-exposure", json={
        "geometry": json.loads(shapely.to_geojson(BLOCK))})
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    feats = doc["features"]
    assert doc["numberMatched"] == len(feats) > 10
    means = [f["properties"]["mean_depth_m"] for f in feats]
    assert [m for m in means if m is not None] == sorted((m for m in means if m is not None),
                                                         reverse=True)
    assert sum(g["parcels"] for g in doc["by_land_use"]) == doc["totals"]["parcels"]
    assert all(set(f["properties"]).isdisjoint(PRIVATE) for f in feats)
    # Brute force for a few parcels: every pixel box, overlap area by shapely.
    path = demo.execute("SELECT path FROM raster_datasets WHERE id = 'flood-depth'"
                        ).fetchone()[0]
    ds = open_raster(path)
    data = ds.read(1)
    for f in feats[:3] + feats[-2:]:
        g = metric(shapely.geometry.shape(f["geometry"]))
        wsum = vsum = 0.0
        peak = -1.0
        x0, y0, x1, y1 = g.bounds
        for col in range(int((x0 - ds.transform.c) // 100), int((x1 - ds.transform.c) // 100)
                         + 1):
            for row in range(int((ds.transform.f - y1) // 100),
                             int((ds.transform.f - y0) // 100) + 1):
                cell = shapely.box(ds.transform.c + col * 100, ds.transform.f - (row + 1) * 100,
                                   ds.transform.c + (col + 1) * 100, ds.transform.f - row * 100)
                a = g.intersection(cell).area
                v = float(data[row, col])
                if a > 0 and v != ds.nodata:
                    wsum, vsum, peak = wsum + a, vsum + a * v, max(peak, v)
        assert f["properties"]["mean_depth_m"] == pytest.approx(vsum / wsum, abs=1e-3)
        assert f["properties"]["max_depth_m"] == pytest.approx(peak, abs=1e-3)


# -------------------------------------------------------------------------------- downloads
@pytest.mark.parametrize("fmt", ["geojson", "csv", "gpkg"])
def test_every_result_downloads(client: TestClient, fmt: str) -> None:
    geometry = json.loads(shapely.to_geojson(BLOCK))
    full = client.post("/query/intersects", json={"collection": "parcels",
                                                  "geometry": geometry}).json()
    resp = client.post(f"/query/intersects?f={fmt}", json={"collection": "parcels",
                                                           "geometry": geometry})
    assert resp.status_code == 200, resp.text
    assert f'.{fmt}"' in resp.headers["content-disposition"]
    if fmt == "csv":
        df = pd.read_csv(io.BytesIO(resp.content))
        assert "wkt" in df.columns
    else:
        df = pyogrio.read_dataframe(io.BytesIO(resp.content))
    assert len(df) == full["summary"]["count"]
    assert {"land_use", "area_m2", "intersection_m2"} <= set(df.columns)
    if fmt != "geojson":  # (GeoJSON keeps the id as the feature's id)
        assert sorted(df["id"]) == sorted(f["id"] for f in full["features"])
    assert not set(PRIVATE) & set(df.columns)
    for path, params, body in (
            ("/query/whats-here", {"lon": DAI_NOI_LONLAT[0], "lat": DAI_NOI_LONLAT[1]}, None),
            ("/query/nearest", {"collection": "health", "lon": 107.6, "lat": 16.47, "k": 3},
             None),
            ("/query/within", {"collection": "health", "lon": 107.6, "lat": 16.47,
                               "distance": 800}, None),
            ("/query/raster-value", {"raster": "flood-depth", "lon": 107.6, "lat": 16.47},
             None),
            ("/query/zonal-stats", {}, {"raster": "elevation", "geometry": geometry}),
            ("/query/flood-exposure", {}, {"geometry": geometry})):
        params = {**params, "f": fmt}
        r = (client.post(path, params=params, json=body) if body
             else client.get(path, params=params))
        assert r.status_code == 200, (path, r.text)
        if fmt == "csv":
            assert len(pd.read_csv(io.BytesIO(r.content))) >= 1, path
        else:
            assert len(pyogrio.read_dataframe(io.BytesIO(r.content))) >= 1, path


def test_planner_sees_owners(client: TestClient, demo: psycopg.Connection) -> None:
    from gis.auth.accounts import create_api_key, revoke_api_key

    key = create_api_key(demo, "planner", "h8-queries-test")
    demo.commit()
    try:
        params = {"collection": "parcels", "lon": DAI_NOI_LONLAT[0],
                  "lat": DAI_NOI_LONLAT[1], "k": 2}
        planner = client.get("/query/nearest", params=params, headers={"X-API-Key": key})
        public = client.get("/query/nearest", params=params)
        assert "owner_name" in planner.json()["features"][0]["properties"]
        assert "owner_name" not in public.json()["features"][0]["properties"]
        csv = client.get("/query/nearest", params={**params, "f": "csv"},
                         headers={"X-API-Key": key})
        assert "owner_name" in pd.read_csv(io.BytesIO(csv.content)).columns
    finally:
        revoke_api_key(demo, key)
        demo.execute("DELETE FROM api_keys WHERE name = 'h8-queries-test'")
        demo.commit()


# -------------------------------------------------------------------------------- bad input
SELF_CROSSING = {"type": "Polygon", "coordinates": [[[107.58, 16.45], [107.59, 16.46],
                                                     [107.59, 16.45], [107.58, 16.46],
                                                     [107.58, 16.45]]]}


def test_bad_input_is_4xx(client: TestClient) -> None:
    here = {"lon": DAI_NOI_LONLAT[0], "lat": DAI_NOI_LONLAT[1]}
    hanoi = {"lon": HANOI_LONLAT[0], "lat": HANOI_LONLAT[1]}
    block = json.loads(shapely.to_geojson(BLOCK))
    error(client.get("/query/whats-here", params=hanoi), 400, "OutsideHue")
    error(client.get("/query/nearest", params={**hanoi, "collection": "health"}), 400,
          "OutsideHue")
    error(client.get("/query/whats-here", params={"lon": "east", "lat": 16}), 400)
    error(client.get("/query/whats-here", params={"lon": 500, "lat": 16}), 400)
    for params in ({"lat": 16.47}, {"lon": 107.58}, {"lon": "nan", "lat": 16.47},
                   {"lon": 107.58, "lat": "inf"}, {"lon": "", "lat": 16.47}):
        error(client.get("/query/whats-here", params=params), 400, "InvalidParameterValue")
    error(client.get("/query/whats-here", params={**here, "f": "kml"}), 400)
    error(client.get("/query/whats-here", params={**here, "point-crs": "EPSG:1"}), 400,
          "UnknownCRS")
    error(client.get("/query/whats-here", params={**here, "crs": "EPSG:1234"}), 400,
          "UnknownCRS")
    error(client.get("/query/nearest", params={**here, "collection": "nope"}), 404)
    error(client.get("/query/nearest", params={**here, "collection": "flood-depth"}), 404)
    for k in (0, -1, 1001):
        error(client.get("/query/nearest", params={**here, "collection": "health", "k": k}),
              400)
    for d in (0, -5, 1e9, "nan"):
        error(client.get("/query/within", params={**here, "collection": "health",
                                                  "distance": d}), 400)
    error(client.get("/query/raster-value", params={**here, "raster": "nope"}), 404)
    error(client.get("/query/nearest", params={**here, "collection": "health", "f": "kml"}),
          400)
    error(client.post("/query/intersects", json={"collection": "parcels",
                                                 "geometry": SELF_CROSSING}), 400,
          "InvalidGeometry")
    error(client.post("/query/intersects", json={"collection": "parcels",
                                                 "geometry": {"type": "Polygon",
                                                              "coordinates": [[1, 2]]}}),
          400, "InvalidGeometry")
    error(client.post("/query/intersects", json={"collection": "parcels"}), 400)
    error(client.post("/query/intersects", json={"collection": "nope", "geometry": block}),
          404)
    error(client.post("/query/intersects", json={"collection": "parcels", "geometry": block,
                                                 "crs": "EPSG:99999"}), 400, "UnknownCRS")
    outside = json.loads(shapely.to_geojson(shapely.box(105.8, 21.0, 105.9, 21.1)))
    error(client.post("/query/intersects", json={"collection": "parcels",
                                                 "geometry": outside}), 400, "OutsideHue")
    error(client.post("/query/zonal-stats", json={"raster": "nope", "geometry": block}), 404)
    error(client.post("/query/zonal-stats", json={"raster": "elevation", "geometry": block,
                                                  "percentiles": [150]}), 400)
    error(client.post("/query/zonal-stats", json={"raster": "elevation",
                                                  "geometry": {"type": "Point",
                                                               "coordinates": [107.6, 16.4]}}),
          400, "InvalidGeometry")
    error(client.post("/query/intersects", content=b"{not json",
                      headers={"content-type": "application/json"}), 400)
    error(client.post("/query/intersects", content=b"a=b",
                      headers={"content-type": "application/x-www-form-urlencoded"}), 415)
    big = {"collection": "parcels", "geometry": block, "padding": "x" * (2 << 20)}
    error(client.post("/query/intersects", json=big), 413, "PayloadTooLarge")


def test_statement_timeout_is_503(demo_settings: Settings) -> None:
    # 30 ms: the whole-city intersects takes ~300 ms here, while connecting and asyncpg's
    # type introspection take a few ms (1 ms could cancel those and leave no clean answer).
    slow = demo_settings.model_copy(update={"statement_timeout_ms": 30})
    huge = json.loads(shapely.to_geojson(shapely.box(107.3, 16.2, 107.9, 16.7)))
    with TestClient(create_app(slow)) as c:
        resp = c.post("/query/intersects", json={"collection": "parcels", "geometry": huge})
    error(resp, 503, "QueryTimeout")


def test_output_crs_in_json_and_files(client: TestClient, tmp_path) -> None:
    params = {"collection": "health", "lon": 107.6, "lat": 16.47, "k": 2}
    crs84 = client.get("/query/nearest", params=params).json()["features"]
    lat_first = client.get("/query/nearest", params={**params, "crs": "EPSG:4326"})
    assert lat_first.headers["content-crs"] == "<http://www.opengis.net/def/crs/EPSG/0/4326>"
    assert [f["geometry"]["coordinates"] for f in lat_first.json()["features"]] == [
        f["geometry"]["coordinates"][::-1] for f in crs84]
    resp = client.get("/query/nearest", params={**params, "crs": "EPSG:9214", "f": "gpkg"})
    (tmp_path / "n.gpkg").write_bytes(resp.content)
    df = pyogrio.read_dataframe(tmp_path / "n.gpkg")
    assert df.crs.to_epsg() == 9214
    expect = [TO_TM3.transform(*f["geometry"]["coordinates"]) for f in crs84]
    got = [(g.x, g.y) for g in df.geometry]
    assert np.allclose(got, expect, atol=0.01)
    # Files are x/y whatever the CRS: EPSG:4326 is written longitude first.
    resp = client.get("/query/nearest", params={**params, "crs": "EPSG:4326", "f": "csv"})
    wkt = pd.read_csv(io.BytesIO(resp.content))["wkt"]
    assert shapely.from_wkt(wkt[0]).x == pytest.approx(crs84[0]["geometry"]["coordinates"][0])
