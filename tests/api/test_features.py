"""OGC API Features Parts 1-3 on the demo data, checked against independent computations
(shapely for geometry, pyproj for coordinates, Python for attributes and times)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pyproj
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point, box, shape

from api.app import create_app
from gis.auth.accounts import create_api_key
from gis.settings import Settings
from tests.common import DAI_NOI_LONLAT

ITEMS = "/collections/{}/items"
SMALL_BBOX = (107.578, 16.462, 107.583, 16.466)  # part of central Huế, CRS84
REF_BBOX = (107.575, 16.458, 107.588, 16.468)  # the reference parcels for filters, CRS84


@pytest.fixture(scope="module")
def client(demo_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(demo_settings)) as c:
        yield c


@pytest.fixture(scope="module")
def all_incidents(client: TestClient) -> list[dict]:
    body = client.get(ITEMS.format("incidents"), params={"limit": 10000}).json()
    assert body["numberReturned"] == body["numberMatched"] == len(body["features"]) == 5000
    return body["features"]


@pytest.fixture(scope="module")
def central_parcels(client: TestClient) -> list[dict]:
    """Every parcel intersecting central Huế (the reference set for filters)."""
    r = client.get(ITEMS.format("parcels"), params={
        "limit": 10000, "bbox": ",".join(map(str, REF_BBOX))})
    feats = r.json()["features"]
    assert 100 < len(feats) < 5000, len(feats)
    return feats


def _ids(r) -> set:
    assert r.status_code == 200, r.text
    return {f["id"] for f in r.json()["features"]}


def _when(f: dict, name: str = "created_at") -> datetime | None:
    v = f["properties"][name]
    return datetime.fromisoformat(v) if v else None


# ----------------------------------------------------------------------------- service
def test_conformance_declares_what_is_implemented(client: TestClient) -> None:
    classes = set(client.get("/conformance").json()["conformsTo"])
    for c in ("ogcapi-features-1/1.0/conf/core", "ogcapi-features-1/1.0/conf/html",
              "ogcapi-features-2/1.0/conf/crs", "ogcapi-features-3/1.0/conf/filter",
              "ogcapi-features-3/1.0/conf/features-filter", "cql2/1.0/conf/cql2-text",
              "cql2/1.0/conf/cql2-json", "cql2/1.0/conf/basic-spatial-functions"):
        assert f"http://www.opengis.net/spec/{c}" in classes
    assert "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions" in classes


def test_api_is_openapi3_and_landing_links_it(client: TestClient) -> None:
    r = client.get("/api")
    assert r.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    doc = r.json()
    assert doc["openapi"].startswith("3.") and "/collections/{collection_id}/queryables" in \
        doc["paths"]
    items = doc["paths"]["/collections/{collection_id}/items"]["get"]
    assert {"bbox-crs", "filter", "filter-lang", "sortby"} <= {p["name"] for p in
                                                                 items["parameters"]}
    rels = {link["rel"] for link in client.get("/").json()["links"]}
    assert {"service-desc", "conformance", "data", "alternate"} <= rels


@pytest.mark.parametrize("path", ["/", "/conformance", "/collections", "/collections/parcels",
                                  "/collections/parcels/queryables",
                                  "/collections/incidents/items?limit=5"])
def test_html_for_every_resource(client: TestClient, path: str) -> None:
    by_f = client.get(path + ("&" if "?" in path else "?") + "f=html")
    by_accept = client.get(path, headers={"Accept": "text/html,application/xhtml+xml"})
    for r in (by_f, by_accept):
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "<html" in r.text and "OpenStreetMap" in r.text


def test_json_unless_html_is_preferred(client: TestClient) -> None:
    for accept in ("", "*/*", "application/json", "application/geo+json",
                   "text/html;q=0.5, application/geo+json"):
        r = client.get(ITEMS.format("wards"), params={"limit": 1}, headers={"Accept": accept})
        assert r.headers["content-type"].startswith("application/geo+json"), accept
    r = client.get("/collections", headers={"Accept": "text/html;q=0.9, */*;q=0.1"})
    assert r.headers["content-type"].startswith("text/html")


def test_item_html_draws_the_feature_on_a_map(client: TestClient, all_incidents) -> None:
    fid = all_incidents[0]["id"]
    r = client.get(f"/collections/incidents/items/{fid}", params={"f": "html"})
    assert "<svg" in r.text and "<circle" in r.text and "reporter" not in r.text
    r = client.get(ITEMS.format("parcels"), params={"f": "html", "limit": 3})
    assert r.text.count("<path") == 3 and r.text.count("<tr>") == 4
    assert 'rel="next"' in r.text and "f=html" in r.text.split('rel="next" href="')[1][:300]


# ------------------------------------------------------------------------------ part 1
def test_bbox_exact_and_six_numbers(client: TestClient, central_parcels) -> None:
    expected = {f["id"] for f in central_parcels if shape(f["geometry"]).intersects(
        box(*SMALL_BBOX))}
    w, s, e, n = SMALL_BBOX
    assert _ids(client.get(ITEMS.format("parcels"), params={
        "bbox": f"{w},{s},{e},{n}", "limit": 10000})) == expected
    assert _ids(client.get(ITEMS.format("parcels"), params={
        "bbox": f"{w},{s},-10,{e},{n},100", "limit": 10000})) == expected
    assert len(expected) > 10


def test_datetime_instants_intervals_and_open_ends(client: TestClient, all_incidents) -> None:
    times = sorted(_when(f) for f in all_incidents)
    a, b = times[1000], times[3000]

    def expect(lo, hi) -> set:
        return {f["id"] for f in all_incidents
                if (lo is None or _when(f) >= lo) and (hi is None or _when(f) <= hi)}

    def get(value: str) -> set:
        return _ids(client.get(ITEMS.format("incidents"), params={"datetime": value,
                                                                   "limit": 10000}))
    iso = lambda t: t.astimezone(UTC).isoformat().replace("+00:00", "Z")  # noqa: E731
    assert get(f"{iso(a)}/{iso(b)}") == expect(a, b)
    assert get(f"{iso(a)}/..") == expect(a, None)
    assert get(f"../{iso(b)}") == expect(None, b)
    assert get(iso(a)) == expect(a, a) and len(expect(a, a)) >= 1
    day = a.astimezone(UTC).date()
    assert get(day.isoformat()) == {f["id"] for f in all_incidents
                                    if _when(f).astimezone(UTC).date() == day}


def test_equality_properties_and_sortby(client: TestClient, central_parcels) -> None:
    bbox = ",".join(map(str, REF_BBOX))
    odt = {f["id"] for f in central_parcels if f["properties"]["land_use"] == "ODT"}
    assert _ids(client.get(ITEMS.format("parcels"), params={
        "bbox": bbox, "land_use": "ODT", "limit": 10000})) == odt
    r = client.get(ITEMS.format("parcels"), params={
        "bbox": bbox, "properties": "land_use,area_m2", "sortby": "-area_m2,land_use",
        "limit": 7})
    feats = r.json()["features"]
    assert all(set(f["properties"]) == {"land_use", "area_m2"} for f in feats)
    ranked = sorted(central_parcels, key=lambda f: (-f["properties"]["area_m2"], f["id"]))
    assert [f["id"] for f in feats] == [f["id"] for f in ranked[:7]]
    nxt = next(link["href"] for link in r.json()["links"] if link["rel"] == "next")
    assert "after=" in nxt and "offset" not in nxt and "sortby=-area_m2" in nxt  # keyset
    second = client.get(nxt).json()["features"]
    assert [f["id"] for f in second] == [f["id"] for f in ranked[7:14]]
    empty = client.get(ITEMS.format("parcels"), params={"properties": "", "limit": 1}).json()
    assert empty["features"][0]["properties"] == {}


def test_next_links_keep_filters_and_walk_everything(client: TestClient, central_parcels
                                                     ) -> None:
    want = {f["id"] for f in central_parcels if f["properties"]["land_use"] == "ODT"}
    url, seen = ITEMS.format("parcels"), set()
    params = {"filter": "land_use = 'ODT'", "bbox": ",".join(map(str, REF_BBOX)),
              "limit": 50}
    page = client.get(url, params=params).json()
    while True:
        seen |= {f["id"] for f in page["features"]}
        nxt = next((lk["href"] for lk in page["links"] if lk["rel"] == "next"), None)
        if nxt is None:
            break
        page = client.get(nxt).json()
    assert seen == want and page["numberMatched"] == len(want)


def test_number_matched_exact_then_estimated(demo_settings: Settings, client: TestClient
                                             ) -> None:
    body = client.get(ITEMS.format("parcels"), params={"limit": 1}).json()
    assert body["numberMatched"] == 10000 and body["numberReturned"] == 1
    assert body["timeStamp"].endswith("Z")
    with TestClient(create_app(demo_settings.model_copy(update={"exact_count_max": 100}))) as c:
        est = c.get(ITEMS.format("parcels"), params={"limit": 1}).json()["numberMatched"]
        small = c.get(ITEMS.format("parcels"), params={"limit": 1, "land_use": "NTD"}).json()
    assert 100 < est and abs(est - 10000) <= 1000  # the planner's estimate
    with psycopg.connect(demo_settings.dsn) as conn:
        ntd = conn.execute("SELECT count(*) FROM land_parcels WHERE land_use = 'NTD'"
                           ).fetchone()[0]
    assert ntd <= 100 and small["numberMatched"] == ntd


# ------------------------------------------------------------------------------ part 2
def test_output_crs_matches_pyproj(client: TestClient, all_incidents) -> None:
    ids = [f["id"] for f in all_incidents[:20]]
    lonlat = {f["id"]: f["geometry"]["coordinates"] for f in all_incidents[:20]}
    for code in (9214, 3405, 3857):
        tr = pyproj.Transformer.from_crs("OGC:CRS84", f"EPSG:{code}", always_xy=True)
        r = client.get(ITEMS.format("incidents"), params={
            "crs": f"http://www.opengis.net/def/crs/EPSG/0/{code}", "limit": 20})
        assert r.headers["content-crs"] == f"<http://www.opengis.net/def/crs/EPSG/0/{code}>"
        for f in r.json()["features"]:
            x, y = tr.transform(*lonlat[f["id"]])
            assert abs(f["geometry"]["coordinates"][0] - x) < 0.01
            assert abs(f["geometry"]["coordinates"][1] - y) < 0.01
    r = client.get(ITEMS.format("incidents"), params={"crs": "EPSG:4326", "limit": 20})
    assert r.headers["content-crs"] == "<http://www.opengis.net/def/crs/EPSG/0/4326>"
    for f in r.json()["features"]:
        assert f["geometry"]["coordinates"] == lonlat[f["id"]][::-1]  # latitude first
    one = client.get(f"/collections/incidents/items/{ids[0]}", params={"crs": "EPSG:9214"})
    assert one.headers["content-crs"].endswith("/9214>")
    assert client.get(ITEMS.format("incidents"), params={"limit": 1}).headers[
        "content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"


def test_bbox_crs_vn2000_and_lat_first(client: TestClient, central_parcels) -> None:
    expected = {f["id"] for f in central_parcels
                if shape(f["geometry"]).intersects(box(*SMALL_BBOX))}
    w, s, e, n = SMALL_BBOX
    latlon = client.get(ITEMS.format("parcels"), params={
        "bbox": f"{s},{w},{n},{e}", "bbox-crs": "EPSG:4326", "limit": 10000})
    assert _ids(latlon) == expected
    # The same area drawn in VN-2000 / TM-3 107-00: compare with pyproj + shapely.
    tr = pyproj.Transformer.from_crs("EPSG:9214", "OGC:CRS84", always_xy=True)
    fw = pyproj.Transformer.from_crs("OGC:CRS84", "EPSG:9214", always_xy=True)
    x0, y0 = fw.transform(w, s)
    x1, y1 = x0 + 500, y0 + 400
    ring = box(x0, y0, x1, y1).segmentize(10).exterior.coords
    poly = shape({"type": "Polygon", "coordinates": [[tr.transform(x, y) for x, y in ring]]})
    got = _ids(client.get(ITEMS.format("parcels"), params={
        "bbox": f"{x0},{y0},{x1},{y1}", "bbox-crs": "EPSG:9214", "limit": 10000}))
    near = {f["id"] for f in central_parcels if shape(f["geometry"]).intersects(poly)}
    assert got == near and len(near) > 10


def test_collections_list_their_crs(client: TestClient) -> None:
    c = client.get("/collections/parcels").json()
    assert c["storageCrs"] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    assert "http://www.opengis.net/def/crs/EPSG/0/9214" in c["crs"]
    assert "http://www.opengis.net/def/crs/EPSG/0/3405" in c["crs"]
    inc = client.get("/collections/incidents").json()
    lo, hi = inc["extent"]["temporal"]["interval"][0]
    assert lo < hi


# ------------------------------------------------------------------------------ part 3
def test_queryables_are_public_fields_and_geometry(client: TestClient) -> None:
    r = client.get("/collections/incidents/queryables")
    assert r.headers["content-type"].startswith("application/schema+json")
    props = r.json()["properties"]
    assert "geometry" in props and props["created_at"]["format"] == "date-time"
    assert not any(k.startswith("reporter") for k in props)
    assert props["status"]["enum"][0] == "received"


def _dist_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    return pyproj.Geod(ellps="WGS84").inv(a[0], a[1], b[0], b[1])[2]


POLY = box(107.57, 16.455, 107.59, 16.47)
CQL2_CASES = [
    ("category = 'roads' AND status <> 'resolved'",
     lambda f, g: f["category"] == "roads" and f["status"] != "resolved"),
    ("category IN ('waste', 'drainage') OR rating < 2",
     lambda f, g: f["category"] in ("waste", "drainage") or (f["rating"] is not None
                                                              and f["rating"] < 2)),
    ("rating BETWEEN 2 AND 4", lambda f, g: f["rating"] is not None and 2 <= f["rating"] <= 4),
    ("resolved_at IS NULL", lambda f, g: f["resolved_at"] is None),
    ("NOT (priority = 'normal')", lambda f, g: f["priority"] != "normal"),
    ("ref LIKE '%1'", lambda f, g: f["ref"].endswith("1")),
    ("CASEI(category) = casei('ROADS')", lambda f, g: f["category"] == "roads"),
    (f"S_INTERSECTS(geometry, {POLY.wkt})", lambda f, g: g.intersects(POLY)),
    (f"S_WITHIN(geom, {POLY.wkt})", lambda f, g: g.within(POLY)),
    (f"S_DISJOINT(geom, {POLY.wkt})", lambda f, g: g.disjoint(POLY)),
    ("S_DWITHIN(geom, POINT({} {}), 400, meters)".format(*DAI_NOI_LONLAT),
     lambda f, g: _dist_m((g.x, g.y), DAI_NOI_LONLAT) <= 400),
    ("T_AFTER(created_at, TIMESTAMP('2025-06-01T00:00:00Z'))",
     lambda f, g: datetime.fromisoformat(f["created_at"]) > datetime(2025, 6, 1, tzinfo=UTC)),
    ("T_BEFORE(created_at, DATE('2025-03-01'))",
     lambda f, g: datetime.fromisoformat(f["created_at"]) < datetime(2025, 3, 1, tzinfo=UTC)),
    ("T_DURING(created_at, INTERVAL('2025-02-01T00:00:00Z', '..'))",
     lambda f, g: datetime.fromisoformat(f["created_at"]) > datetime(2025, 2, 1, tzinfo=UTC)),
    ("T_INTERSECTS(created_at, INTERVAL('2025-01-01', '2025-01-31'))",
     lambda f, g: datetime(2025, 1, 1, tzinfo=UTC) <= datetime.fromisoformat(
         f["created_at"]) < datetime(2025, 2, 1, tzinfo=UTC)),
]


@pytest.mark.parametrize(("text", "predicate"), CQL2_CASES, ids=[c[0][:40] for c in CQL2_CASES])
def test_cql2_text_matches_python(client: TestClient, all_incidents, text, predicate) -> None:
    expected = {f["id"] for f in all_incidents
                if predicate(f["properties"], shape(f["geometry"]))}
    got = _ids(client.get(ITEMS.format("incidents"), params={"filter": text, "limit": 10000}))
    assert got == expected
    assert 0 < len(expected) < len(all_incidents), "a case that selects nothing proves nothing"


def test_cql2_json_and_filter_crs(client: TestClient, all_incidents) -> None:
    poly = {"type": "Polygon", "coordinates": [list(POLY.exterior.coords)]}
    expr = {"op": "and", "args": [
        {"op": "s_intersects", "args": [{"property": "geometry"}, poly]},
        {"op": "=", "args": [{"property": "category"}, "roads"]}]}
    expected = {f["id"] for f in all_incidents if f["properties"]["category"] == "roads"
                and shape(f["geometry"]).intersects(POLY)}
    got = _ids(client.get(ITEMS.format("incidents"), params={
        "filter": json.dumps(expr), "filter-lang": "cql2-json", "limit": 10000}))
    assert got == expected and expected
    # The same polygon in VN-2000 / TM-3 107-00 (filter-crs), densified edges.
    fw = pyproj.Transformer.from_crs("OGC:CRS84", "EPSG:9214", always_xy=True)
    dense = POLY.segmentize(0.0005)
    vn = "POLYGON((" + ", ".join("{} {}".format(*fw.transform(x, y))
                                 for x, y in dense.exterior.coords) + "))"
    got9214 = _ids(client.get(ITEMS.format("incidents"), params={
        "filter": f"S_INTERSECTS(geom, {vn}) AND category = 'roads'",
        "filter-crs": "EPSG:9214", "limit": 10000}))
    assert got9214 == expected
    dw = {"op": "s_dwithin", "args": [{"property": "geom"},
                                      {"type": "Point", "coordinates": list(DAI_NOI_LONLAT)},
                                      0.4, "km"]}
    near = {f["id"] for f in all_incidents
            if _dist_m(tuple(f["geometry"]["coordinates"]), DAI_NOI_LONLAT) <= 400}
    assert _ids(client.get(ITEMS.format("incidents"), params={
        "filter": json.dumps(dw), "filter-lang": "cql2-json", "limit": 10000})) == near


def test_filters_cannot_probe_private_fields(client: TestClient) -> None:
    for params in ({"filter": "reporter_name LIKE 'A%'"}, {"reporter_phone": "0905000000"},
                   {"sortby": "reporter_name"}, {"properties": "reporter_email"},
                   {"filter": "no_such_field = 1"}):
        r = client.get(ITEMS.format("incidents"), params=params)
        assert r.status_code == 400 and r.json()["code"] == "InvalidParameterValue", params
    unknown = client.get(ITEMS.format("incidents"), params={"filter": "no_such_field = 1"})
    private = client.get(ITEMS.format("incidents"), params={"filter": "reporter_name = 'x'"})
    assert unknown.json()["description"].split(";")[1] == \
        private.json()["description"].split(";")[1]  # the same list of known names


def test_private_fields_for_entitled_roles_only(demo_settings: Settings, client: TestClient
                                                ) -> None:
    with psycopg.connect(demo_settings.dsn) as conn:
        key = create_api_key(conn, "planner", "test-features-planner")
        citizen = create_api_key(conn, "citizen", "test-features-citizen")
        owners = conn.execute("SELECT count(*) FROM land_parcels WHERE owner_name LIKE 'N%'"
                              ).fetchone()[0]
        conn.commit()
    try:
        params = {"filter": "owner_name LIKE 'N%'", "limit": 10000}
        r = client.get(ITEMS.format("parcels"), params=params, headers={"X-API-Key": key})
        assert r.status_code == 200 and r.json()["numberMatched"] == owners > 0
        assert all("owner_name" in f["properties"] for f in r.json()["features"])
        r = client.get(ITEMS.format("parcels"), params=params, headers={"X-API-Key": citizen})
        assert r.status_code == 400
        text = client.get(ITEMS.format("parcels"), params={"limit": 50},
                          headers={"X-API-Key": citizen}).text
        assert "owner_name" not in text
    finally:
        with psycopg.connect(demo_settings.dsn) as conn:
            conn.execute("DELETE FROM api_keys WHERE name LIKE 'test-features-%'")


# ------------------------------------------------------------------------------ exports
def test_items_as_csv_and_geopackage(client: TestClient, central_parcels, tmp_path) -> None:
    import pyogrio

    params = {"bbox": ",".join(map(str, REF_BBOX)), "land_use": "ODT"}
    want = sum(1 for f in central_parcels if f["properties"]["land_use"] == "ODT")
    csv = client.get(ITEMS.format("parcels"), params={**params, "f": "csv"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert len(csv.text.strip().splitlines()) == want + 1 and "owner_name" not in csv.text
    gpkg = client.get(ITEMS.format("parcels"), params=params,
                      headers={"Accept": "application/geopackage+sqlite3"})
    assert gpkg.status_code == 200
    path = tmp_path / "p.gpkg"
    path.write_bytes(gpkg.content)
    df = pyogrio.read_dataframe(path)
    assert len(df) == want and "owner_name" not in df.columns and set(df.land_use) == {"ODT"}


# -------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("params", "code"), [
    ({"bbox": "1,2,3,4,5"}, "InvalidBBox"),
    ({"bbox": "107,16,108"}, "InvalidBBox"),
    ({"bbox": "200,16,201,17"}, "InvalidBBox"),
    ({"bbox": "107.5,16.4,107.6,16.5", "bbox-crs": "EPSG:2154"}, "UnknownCRS"),
    ({"bbox-crs": "EPSG:9214"}, "InvalidParameterValue"),
    ({"crs": "EPSG:32648"}, "UnknownCRS"),
    ({"crs": "nonsense"}, "UnknownCRS"),
    ({"datetime": "yesterday"}, "InvalidParameterValue"),
    ({"datetime": "2025-13-01"}, "InvalidParameterValue"),
    ({"datetime": "../.."}, "InvalidParameterValue"),
    ({"datetime": "2025-02-01/2025-01-01"}, "InvalidParameterValue"),
    ({"datetime": "2025-01-01/2025-02-01/2025-03-01"}, "InvalidParameterValue"),
    ({"limit": "-1"}, "InvalidParameterValue"),
    ({"limit": "1e3"}, "InvalidParameterValue"),
    ({"offset": "100001"}, "InvalidParameterValue"),
    ({"sortby": "nope"}, "InvalidParameterValue"),
    ({"sortby": "rating,,ref"}, "InvalidParameterValue"),
    ({"sortby": "rating", "after": "5"}, "InvalidParameterValue"),
    ({"properties": "rating,nope"}, "InvalidParameterValue"),
    ({"rating": "high"}, "InvalidParameterValue"),
    ({"rating": "99999999999999999999999"}, "InvalidParameterValue"),
    ({"rating": "40000"}, "InvalidParameterValue"),
    ({"unknown_param": "1"}, "InvalidParameterValue"),
    ({"f": "xml"}, "InvalidParameterValue"),
    ({"filter": "category = "}, "InvalidParameterValue"),
    ({"filter": "category = 'roads' AND"}, "InvalidParameterValue"),
    ({"filter": "rating = 'five'"}, "InvalidParameterValue"),
    ({"filter": "rating > 1e400"}, "InvalidParameterValue"),
    ({"filter": "S_INTERSECTS(geom, POLYGON((1 1, 2 2)))"}, "InvalidParameterValue"),
    ({"filter": "S_DWITHIN(geom, POINT(107 16), -5, meters)"}, "InvalidParameterValue"),
    ({"filter": "T_AFTER(category, DATE('2025-01-01'))"}, "InvalidParameterValue"),
    ({"filter": "T_MEETS(created_at, INTERVAL('2025-02-01', '2025-01-01'))"},
     "InvalidParameterValue"),
    ({"filter": "rating + 1 > 2"}, "InvalidParameterValue"),
    ({"filter": "{\"op\": \"=\"", "filter-lang": "cql2-json"}, "InvalidParameterValue"),
    ({"filter": "{\"op\": \"nope\", \"args\": []}", "filter-lang": "cql2-json"},
     "InvalidParameterValue"),
    ({"filter": "category = 'x'", "filter-lang": "ecql"}, "InvalidParameterValue"),
    ({"filter": "category = 'x'", "filter-crs": "EPSG:1"}, "UnknownCRS"),
    ({"filter-lang": "cql2-text"}, "InvalidParameterValue"),
    ({"bbox": "-1e10,-1e10,1e10,1e10", "bbox-crs": "EPSG:9214"}, "InvalidBBox"),
    ({"filter": "category = rating"}, "InvalidParameterValue"),
    ({"filter": " AND ".join(["rating = 1"] * 1500)}, "InvalidParameterValue"),
    ({"filter": "LOWER(rating) = 'x'"}, "InvalidParameterValue"),
    ({"filter": "S_INTERSECTS(category, POINT(107 16))"}, "InvalidParameterValue"),
])
def test_bad_items_input_is_a_400(client: TestClient, params: dict, code: str) -> None:
    r = client.get(ITEMS.format("incidents"), params=params)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == code and r.json()["description"]


@pytest.mark.parametrize("text", ["(" * 3000 + "rating = 1" + ")" * 3000,
                                  " OR ".join(["rating = 1"] * 3000), "x" * 30000])
def test_pathological_filters_are_never_a_500(client: TestClient, text: str) -> None:
    r = client.get(ITEMS.format("incidents"), params={"filter": text, "limit": 1})
    assert r.status_code in (200, 400), r.status_code


def test_datetime_needs_a_temporal_collection(client: TestClient) -> None:
    r = client.get(ITEMS.format("parcels"), params={"datetime": "2025-01-01"})
    assert r.status_code == 400 and "temporal" in r.json()["description"]
    ok = client.get(ITEMS.format("construction"), params={"datetime": "2024-01-01/.."})
    assert ok.status_code == 200 and all(
        f["properties"]["issued_on"] >= "2024-01-01" for f in ok.json()["features"])
    assert ok.json()["numberReturned"] > 0


@pytest.mark.parametrize("url", ["/collections/parcels/items/abc",
                                 "/collections/parcels/items/99999999999999999999999",
                                 "/collections/parcels/items/-1",
                                 "/collections/wards/items/00000",
                                 "/collections/nope/queryables"])
def test_unknown_things_are_404(client: TestClient, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 404 and r.json()["code"] in ("FeatureNotFound", "LayerNotFound")


def test_point_geometry_and_item_links(client: TestClient, all_incidents) -> None:
    f = all_incidents[7]
    one = client.get(f"/collections/incidents/items/{f['id']}").json()
    assert one["geometry"] == f["geometry"] and Point(*one["geometry"]["coordinates"]).is_valid
    assert {"self", "alternate", "collection"} <= {lk["rel"] for lk in one["links"]}


def test_a_repeated_filter_is_compiled_for_each_request(client: TestClient) -> None:
    """The parsed filter is kept per worker (api.features._parsed_filter); what it means
    still depends on each request: its collection (a field another layer lacks is a 400
    there, every time), its bbox, and a filter that does not parse is a 400 every time."""
    text = "land_use = 'ODT' AND area_m2 > 150"
    pages = []
    for bbox in ("107.575,16.458,107.588,16.468", "107.59,16.45,107.60,16.46",
                 "107.575,16.458,107.588,16.468"):
        r = client.get(ITEMS.format("parcels"), params={"filter": text, "bbox": bbox})
        assert r.status_code == 200, r.text
        feats = r.json()["features"]
        assert feats and all(f["properties"]["land_use"] == "ODT"
                             and f["properties"]["area_m2"] > 150 for f in feats)
        pages.append([f["id"] for f in feats])
        other = client.get(ITEMS.format("incidents"), params={"filter": text})
        assert other.status_code == 400, other.text
        bad = client.get(ITEMS.format("parcels"), params={"filter": "land_use = "})
        assert bad.status_code == 400, bad.text
    assert pages[0] == pages[2] != pages[1]
