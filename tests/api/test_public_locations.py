"""Sensitive incident locations (public order) reach the public only rounded to about 100 m,
with no address, through every public reader: features, item by id, filters, queries,
exports, vector tiles, WMS GetFeatureInfo and folium. Checked against pyproj and shapely, not
against the database's own rounding."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import mapbox_vector_tile
import morecantile
import psycopg
import pyproj
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point

from api.app import create_app
from gis.auth.accounts import create_api_key
from gis.settings import Settings
from layers.incidents import SENSITIVE_CATEGORIES

TO_M = pyproj.Transformer.from_crs(4326, 9214, always_xy=True).transform
ITEMS = "/collections/incidents/items"


@pytest.fixture(scope="module")
def client(demo_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(demo_settings)) as c:
        yield c


@pytest.fixture(scope="module")
def exact(demo_settings: Settings) -> dict[str, dict]:
    """Every report straight from the table: exact point, category, address."""
    with psycopg.connect(demo_settings.dsn) as conn:
        rows = conn.execute("SELECT ref, category, address, ST_X(geom), ST_Y(geom), id "
                            "FROM incidents").fetchall()
    return {r[0]: {"category": r[1], "address": r[2], "lon": r[3], "lat": r[4], "id": r[5]}
            for r in rows}


@pytest.fixture(scope="module")
def admin_key(demo_settings: Settings) -> Iterator[str]:
    with psycopg.connect(demo_settings.dsn) as conn:
        wards = [r[0] for r in conn.execute("SELECT gso_code FROM wards")]
        keys = {"admin": create_api_key(conn, "admin", "test-publoc-admin"),
                "inspector": create_api_key(conn, "inspector", "test-publoc-inspector",
                                            wards=wards)}
        conn.commit()
    yield keys
    with psycopg.connect(demo_settings.dsn) as conn:
        conn.execute("DELETE FROM api_keys WHERE name LIKE 'test-publoc-%'")


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return Point(TO_M(*a)).distance(Point(TO_M(*b)))


def _on_grid(lon: float, lat: float, tol_m: float = 0.01) -> bool:
    x, y = TO_M(lon, lat)
    return all(abs(v / 100 - round(v / 100)) * 100 < tol_m for v in (x, y))


def _sensitive_far(exact: dict[str, dict], n: int = 5, min_m: float = 20.0) -> list[str]:
    """Sensitive reports whose exact point lies at least ``min_m`` from its grid point."""
    out = []
    for ref, r in sorted(exact.items()):
        if r["category"] in SENSITIVE_CATEGORIES:
            x, y = TO_M(r["lon"], r["lat"])
            if math.hypot(x - round(x / 100) * 100, y - round(y / 100) * 100) >= min_m:
                out.append(ref)
    assert len(out) >= n, "the demo should hold sensitive reports"
    return out[:n]


def test_public_items_are_rounded_and_without_address(client: TestClient, exact) -> None:
    feats = client.get(ITEMS, params={"limit": 10000}).json()["features"]
    assert len(feats) == len(exact)
    sensitive = 0
    for f in feats:
        ref = f["properties"]["ref"]
        e = exact[ref]
        lon, lat = f["geometry"]["coordinates"]
        if e["category"] in SENSITIVE_CATEGORIES:
            sensitive += 1
            assert _on_grid(lon, lat), ref
            assert _metres((lon, lat), (e["lon"], e["lat"])) <= 70.72, ref
            assert f["properties"]["address"] is None
        else:
            assert (lon, lat) == pytest.approx((e["lon"], e["lat"]), abs=1e-7)
            assert f["properties"]["address"] == e["address"]
    assert sensitive > 100


def test_item_by_id_rounded_for_public_and_inspector_exact_for_admin(
        client: TestClient, exact, admin_key) -> None:
    ref = _sensitive_far(exact, 1)[0]
    e = exact[ref]
    url = f"{ITEMS}/{e['id']}"
    for headers in ({}, {"X-API-Key": admin_key["inspector"]}):
        f = client.get(url, headers=headers).json()
        assert _on_grid(*f["geometry"]["coordinates"])
        assert f["properties"]["address"] is None
    f = client.get(url, headers={"X-API-Key": admin_key["admin"]}).json()
    assert f["geometry"]["coordinates"] == pytest.approx([e["lon"], e["lat"]], abs=1e-7)
    assert f["properties"]["address"] == e["address"]


def test_filters_cannot_probe_the_exact_point(client: TestClient, exact) -> None:
    for ref in _sensitive_far(exact):
        e = exact[ref]
        d = 1e-5  # about a metre
        bbox = f"{e['lon'] - d},{e['lat'] - d},{e['lon'] + d},{e['lat'] + d}"
        refs = {f["properties"]["ref"] for f in client.get(
            ITEMS, params={"bbox": bbox, "limit": 1000}).json()["features"]}
        assert ref not in refs
        cql = f"S_DWITHIN(geom, POINT({e['lon']} {e['lat']}), 5, meters)"
        r = client.get(ITEMS, params={"filter": cql, "limit": 1000})
        assert r.status_code == 200, r.text
        assert ref not in {f["properties"]["ref"] for f in r.json()["features"]}
        within = client.get("/query/within", params={
            "collection": "incidents", "lon": e["lon"], "lat": e["lat"], "distance": 5}).json()
        assert ref not in {f["properties"]["ref"] for f in within["features"]}
        near = client.get("/query/nearest", params={
            "collection": "incidents", "lon": e["lon"], "lat": e["lat"], "k": 50}).json()
        hit = [f for f in near["features"] if f["properties"]["ref"] == ref]
        assert hit and hit[0]["properties"]["distance_m"] >= 19


def test_exports_are_rounded(client: TestClient, exact, demo_settings: Settings,
                             tmp_path) -> None:
    refs = _sensitive_far(exact)
    csv = client.get(ITEMS, params={"f": "csv", "limit": 10000}).text
    geo = client.get(ITEMS, params={"f": "json", "limit": 10000}).text
    from gis.io.exporter import export_layer

    with psycopg.connect(demo_settings.dsn) as conn:
        export_layer(conn, "incidents", tmp_path / "pub.geojson", "geojson")
        export_layer(conn, "incidents", tmp_path / "all.geojson", "geojson",
                     include_private=True)
    pub = {f["properties"]["ref"]: f for f in
           json.loads((tmp_path / "pub.geojson").read_text())["features"]}
    full = {f["properties"]["ref"]: f for f in
            json.loads((tmp_path / "all.geojson").read_text())["features"]}
    for ref in refs:
        e = exact[ref]
        for text in (csv, geo):
            assert f"{e['lon']:.6f}" not in text or f"{e['lat']:.6f}" not in text
        assert _on_grid(*pub[ref]["geometry"]["coordinates"])
        assert pub[ref]["properties"]["address"] is None
        assert full[ref]["geometry"]["coordinates"] == pytest.approx([e["lon"], e["lat"]],
                                                                     abs=1e-6)


def test_vector_tiles_carry_the_rounded_point(client: TestClient, exact) -> None:
    tms = morecantile.tms.get("WebMercatorQuad")
    merc = pyproj.Transformer.from_crs(4326, 3857, always_xy=True).transform
    for ref in _sensitive_far(exact, 3):
        e = exact[ref]
        t = tms.tile(e["lon"], e["lat"], 17)
        r = client.get(f"/collections/incidents/tiles/WebMercatorQuad/17/{t.y}/{t.x}")
        b = tms.xy_bounds(t)
        pub_lonlat = None
        ids = []
        if r.status_code == 200:
            layer = mapbox_vector_tile.decode(r.content)["incidents"]
            for f in layer["features"]:
                ids.append(f["properties"].get("ref"))
                if f["properties"].get("ref") == ref:
                    x, y = f["geometry"]["coordinates"]
                    pub_lonlat = (b.left + x / layer["extent"] * (b.right - b.left),
                                  b.bottom + y / layer["extent"] * (b.top - b.bottom))
                    assert "address" not in f["properties"] or not f["properties"]["address"]
        ex, ey = merc(e["lon"], e["lat"])
        if pub_lonlat is not None:  # the rounded point fell in the same tile
            assert math.hypot(pub_lonlat[0] - ex, pub_lonlat[1] - ey) >= 15
        # Wherever the rounded point fell, its tile shows it there.
        rx, ry = merc(*pyproj.Transformer.from_crs(9214, 4326, always_xy=True).transform(
            *(round(v / 100) * 100 for v in TO_M(e["lon"], e["lat"]))))
        t2 = tms.tile(*pyproj.Transformer.from_crs(3857, 4326, always_xy=True).transform(
            rx, ry), 17)
        r2 = client.get(f"/collections/incidents/tiles/WebMercatorQuad/17/{t2.y}/{t2.x}")
        layer = mapbox_vector_tile.decode(r2.content)["incidents"]
        b2 = tms.xy_bounds(t2)
        got = [f["geometry"]["coordinates"] for f in layer["features"]
               if f["properties"].get("ref") == ref]
        assert len(got) == 1
        gx = b2.left + got[0][0] / layer["extent"] * (b2.right - b2.left)
        gy = b2.bottom + got[0][1] / layer["extent"] * (b2.top - b2.bottom)
        assert math.hypot(gx - rx, gy - ry) < 1.0


def test_wms_feature_info_and_folium_do_not_reveal_it(client: TestClient, exact,
                                                      demo_settings: Settings) -> None:
    from gis.webmap.folium_export import layer_geojson
    from layers import VECTOR_LAYERS

    refs = _sensitive_far(exact)
    with psycopg.connect(demo_settings.dsn) as conn:
        fc = layer_geojson(conn, VECTOR_LAYERS["incidents"], limit=10000)
    by_ref = {f["properties"]["ref"]: f for f in fc["features"]}
    for ref in refs:
        assert _on_grid(*by_ref[ref]["geometry"]["coordinates"], tol_m=0.2)  # 6 decimals
        e = exact[ref]
        d = 2e-5
        r = client.get("/wms", params={
            "SERVICE": "WMS", "VERSION": "1.3.0", "REQUEST": "GetFeatureInfo",
            "LAYERS": "incidents", "QUERY_LAYERS": "incidents", "CRS": "CRS:84",
            "BBOX": f"{e['lon'] - d},{e['lat'] - d},{e['lon'] + d},{e['lat'] + d}",
            "WIDTH": 101, "HEIGHT": 101, "I": 50, "J": 50,
            "INFO_FORMAT": "application/json", "FEATURE_COUNT": 50})
        assert r.status_code == 200, r.text
        assert ref not in r.text and (e["address"] or "\0") not in r.text
