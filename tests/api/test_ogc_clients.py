"""Real OGC API Features clients against a real ``huegis serve`` on the demo data:
OWSLib (collections, items with bbox and CQL2) and GDAL's OAPIF driver (ogrinfo, ogr2ogr
with a where clause and a VN-2000 target CRS). QGIS: tests/api/test_qgis.py."""

from __future__ import annotations

import json
import subprocess

import psycopg
import pyproj
import pytest
from owslib.ogcapi.features import Features
from shapely.geometry import box, shape

from gis.settings import Settings

BBOX = (107.578, 16.462, 107.583, 16.466)


def _run(*args: str) -> str:
    out = subprocess.run(args, capture_output=True, text=True, timeout=300,
                         env={"GDAL_HTTP_TIMEOUT": "60", "CPL_DEBUG": "OFF",
                              "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def counts(demo_settings: Settings) -> dict:
    with psycopg.connect(demo_settings.dsn) as conn:
        return {
            "parcels": conn.execute("SELECT count(*) FROM land_parcels").fetchone()[0],
            "construction": conn.execute("SELECT count(*) FROM construction").fetchone()[0],
            "violations": conn.execute(
                "SELECT count(*) FROM construction WHERE kind = 'violation'").fetchone()[0],
            "bbox": conn.execute(
                "SELECT count(*) FROM land_parcels WHERE ST_Intersects(geom, "
                "ST_MakeEnvelope(%s, %s, %s, %s, 4326))", BBOX).fetchone()[0],
        }


def test_owslib_collections_items_bbox_and_cql2(live_server: str, counts: dict) -> None:
    api = Features(live_server)
    ids = [c["id"] for c in api.collections()["collections"]]
    assert {"parcels", "wards", "incidents"} <= set(ids)
    assert "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter" in \
        api.conformance()["conformsTo"]
    assert "owner_name" not in api.collection_queryables("parcels")["properties"]
    page = api.collection_items("parcels", bbox=list(BBOX), limit=10000)
    got = {f["id"] for f in page["features"]}
    assert len(got) == counts["bbox"] > 0
    assert all(shape(f["geometry"]).intersects(box(*BBOX)) for f in page["features"])
    odt = api.collection_items("parcels", bbox=list(BBOX), limit=10000,
                               filter="land_use = 'ODT' AND area_m2 > 100")
    assert odt["features"] and all(
        f["properties"]["land_use"] == "ODT" and f["properties"]["area_m2"] > 100
        for f in odt["features"])
    assert {f["id"] for f in odt["features"]} < got


def test_ogrinfo_lists_the_layers(live_server: str) -> None:
    out = _run("ogrinfo", "-ro", "-q", f"OAPIF:{live_server}")
    for layer in ("wards", "parcels", "construction", "incidents", "tourism"):
        assert layer in out
    # Raster layers are listed too (itemType "coverage"); GDAL 3.6 shows every collection.


def test_ogr2ogr_copies_with_where_and_vn2000(live_server: str, counts: dict, tmp_path) -> None:
    whole = tmp_path / "construction.geojson"
    _run("ogr2ogr", "-f", "GeoJSON", str(whole), f"OAPIF:{live_server}", "construction")
    assert len(json.loads(whole.read_text())["features"]) == counts["construction"]

    vn = tmp_path / "violations.gpkg"
    _run("ogr2ogr", "-f", "GPKG", str(vn), f"OAPIF:{live_server}", "construction",
         "-where", "kind = 'violation'", "-t_srs", "EPSG:9214", "-nln", "violations")
    info = _run("ogrinfo", "-ro", "-so", str(vn), "violations")
    assert f"Feature Count: {counts['violations']}" in info
    assert "VN-2000" in info and "107" in info

    import pyogrio

    df = pyogrio.read_dataframe(vn)
    src = json.loads(whole.read_text())["features"]
    lonlat = {f["properties"]["record_no"]: shape(f["geometry"]) for f in src}
    row = df.iloc[0]
    tr = pyproj.Transformer.from_crs("OGC:CRS84", "EPSG:9214", always_xy=True)
    c = lonlat[row["record_no"]].centroid
    x, y = tr.transform(c.x, c.y)
    assert abs(row.geometry.centroid.x - x) < 0.5 and abs(row.geometry.centroid.y - y) < 0.5


def test_ogr2ogr_cql2_filter_through_the_server(live_server: str, counts: dict,
                                                 tmp_path) -> None:
    """The filter sent to the server (the items URL with a CQL2 filter), read by GDAL."""
    from urllib.parse import quote

    out = tmp_path / "v.geojson"
    url = (f"{live_server}/collections/construction/items?limit=10000&filter="
           + quote("kind = 'violation'"))
    _run("ogr2ogr", "-f", "GeoJSON", str(out), url)
    assert len(json.loads(out.read_text())["features"]) == counts["violations"] > 0
