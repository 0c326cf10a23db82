"""OGC API Features Part 4 over HTTP: create, replace, update, delete, ETags, audit, roles."""

import json
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from shapely.geometry import box, mapping, shape

from api.app import create_app
from gis.auth.accounts import create_api_key
from gis.settings import Settings
from gis.sqlbuild import table_ref
from layers import VECTOR_LAYERS
from tests.common import DAI_NOI_LONLAT, HANOI_LONLAT, TRUONG_TIEN_LONLAT

TO_9214 = Transformer.from_crs(4326, 9214, always_xy=True)
FROM_9214 = Transformer.from_crs(9214, 4326, always_xy=True)
GEOJSON = {"Content-Type": "application/geo+json"}


def _square(lon: float, lat: float, half: float = 0.0001) -> dict:
    """A ~22 m square polygon (EPSG:4326) around lon/lat, as GeoJSON."""
    return mapping(box(lon - half, lat - half, lon + half, lat + half))


def _ward_at(conn: psycopg.Connection, lon: float, lat: float) -> str:
    return conn.execute("SELECT gso_code FROM admin_units WHERE level = 'ward' AND "
                        "ST_Intersects(geom, ST_SetSRID(ST_Point(%s, %s), 4326))",
                        (lon, lat)).fetchone()[0]


@pytest.fixture(scope="module")
def keys(database_url: str) -> Iterator[dict[str, dict[str, str]]]:
    with psycopg.connect(database_url) as c:
        dai_noi_ward = _ward_at(c, *DAI_NOI_LONLAT)
        other = c.execute("SELECT gso_code FROM admin_units WHERE level = 'ward' AND "
                          "gso_code <> %s LIMIT 1", (dai_noi_ward,)).fetchone()[0]
        made = {"planner": create_api_key(c, "planner", "t-planner"),
                "admin": create_api_key(c, "admin", "t-admin"),
                "citizen": create_api_key(c, "citizen", "t-citizen"),
                "inspector": create_api_key(c, "inspector", "t-inspector", [dai_noi_ward]),
                "far_inspector": create_api_key(c, "inspector", "t-far", [other])}
    yield {role: {"X-API-Key": key} for role, key in made.items()}
    with psycopg.connect(database_url) as c:
        c.execute("DELETE FROM api_keys WHERE name LIKE 't-%'")


@pytest.fixture(scope="module")
def client(settings: Settings, keys) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c
    # The session database is shared: remove what these tests wrote (the audit stays).
    with psycopg.connect(settings.dsn) as conn:
        for layer in VECTOR_LAYERS.values():
            if layer.editable:
                conn.execute(f"DELETE FROM {table_ref(layer)} WHERE source = 'api'")


def _parcel(no: str, geometry: dict | None = None, **props: object) -> dict:
    return {"type": "Feature",
            "geometry": geometry or _square(*DAI_NOI_LONLAT),
            "properties": {"parcel_no": no, "map_sheet_no": "T1", "land_use": "ODT", **props}}


def _post(client: TestClient, body: object, who: dict | None, collection: str = "parcels",
          headers: dict | None = None):
    return client.post(f"/collections/{collection}/items", content=json.dumps(body),
                       headers={**GEOJSON, **(who or {}), **(headers or {})})


def _audit(conn: psycopg.Connection, layer: str, fid: str) -> list[tuple]:
    return conn.execute("SELECT operation, actor, actor_role, before, after FROM feature_audit "
                        "WHERE layer = %s AND feature_id = %s ORDER BY id",
                        (layer, fid)).fetchall()


def test_create_201_location_etag_and_derived_fields(client, keys, conn) -> None:
    r = _post(client, _parcel("C-1", owner_name="Nguyễn Văn A", zoning="R2"), keys["planner"])
    assert r.status_code == 201, r.text
    fid = str(r.json()["id"])
    assert r.headers["Location"].endswith(f"/collections/parcels/items/{fid}")
    assert r.headers["ETag"].startswith('"')
    body = r.json()
    assert body["geometry"]["type"] == "MultiPolygon"  # the Polygon was promoted
    assert body["properties"]["owner_name"] == "Nguyễn Văn A"  # planners may read owners
    # Derived fields, checked independently: area in EPSG:9214 with pyproj + shapely.
    projected = shapely.transform(shape(_square(*DAI_NOI_LONLAT)),
                                  lambda xy: np.column_stack(TO_9214.transform(*xy.T)))
    assert body["properties"]["area_m2"] == pytest.approx(projected.area, abs=0.05)
    assert body["properties"]["ward_code"] == _ward_at(conn, *DAI_NOI_LONLAT)
    assert body["properties"]["source"] == "api"

    got = client.get(r.headers["Location"])
    assert got.status_code == 200 and got.headers["ETag"] == r.headers["ETag"]
    assert "owner_name" not in got.json()["properties"]  # the public never sees it

    audit = _audit(conn, "parcels", fid)
    assert [(a[0], a[1], a[2], a[3]) for a in audit] == [("create", "t-planner", "planner", None)]
    assert audit[0][4]["properties"]["owner_name"] == "Nguyễn Văn A"


def test_etag_round_trip_put_412_428(client, keys, conn) -> None:
    r = _post(client, _parcel("E-1", owner_name="Trần Thị B"), keys["planner"])
    url, etag = r.headers["Location"], r.headers["ETag"]
    replacement = _parcel("E-1", _square(*DAI_NOI_LONLAT, half=0.0002), land_use="TMD")
    put = client.put(url, content=json.dumps(replacement), headers={**GEOJSON,
                     **keys["planner"]})
    assert put.status_code == 428
    put = client.put(url, content=json.dumps(replacement),
                     headers={**GEOJSON, **keys["planner"], "If-Match": etag})
    assert put.status_code == 200, put.text
    new = put.headers["ETag"]
    assert new != etag and client.get(url).headers["ETag"] == new
    props = put.json()["properties"]
    assert props["land_use"] == "TMD" and props["owner_name"] is None  # replaced: omitted→null
    assert props["area_m2"] == pytest.approx(4 * r.json()["properties"]["area_m2"], rel=1e-3)
    stale = client.put(url, content=json.dumps(replacement),
                       headers={**GEOJSON, **keys["planner"], "If-Match": etag})
    assert stale.status_code == 412 and stale.json()["code"] == "PreconditionFailed"
    ops = [a[0] for a in _audit(conn, "parcels", str(r.json()["id"]))]
    assert ops == ["create", "replace"]  # the refused writes left no trace


def test_patch_merge_and_private_field_never_leaks(client, keys, conn) -> None:
    r = _post(client, _parcel("P-1", zoning="R1"), keys["planner"])
    url, fid = r.headers["Location"], str(r.json()["id"])
    geom_before = r.json()["geometry"]
    patch = {"properties": {"owner_name": "Lê Văn Bí Mật", "zoning": None, "land_use": "CLN"}}
    p = client.patch(url, content=json.dumps(patch),
                     headers={"Content-Type": "application/merge-patch+json",
                              **keys["planner"], "If-Match": r.headers["ETag"]})
    assert p.status_code == 200, p.text
    props = p.json()["properties"]
    assert (props["owner_name"], props["zoning"], props["land_use"]) == (
        "Lê Văn Bí Mật", None, "CLN")
    assert props["parcel_no"] == "P-1" and p.json()["geometry"] == geom_before
    # Public reads (item, items, a citizen's key) never carry the owner.
    for who in ({}, keys["citizen"]):
        assert "owner_name" not in client.get(url, headers=who).json()["properties"]
    items = client.get("/collections/parcels/items", params={"limit": 1000}).text
    assert "Bí Mật" not in items and "owner_name" not in items
    before, after = _audit(conn, "parcels", fid)[-1][3:]
    assert before["properties"]["zoning"] == "R1" and after["properties"]["zoning"] is None
    # A patched geometry (here in VN-2000) replaces the old one; the area is recomputed.
    x, y = TO_9214.transform(*DAI_NOI_LONLAT)
    ring = [[x, y], [x + 10, y], [x + 10, y + 10], [x, y + 10], [x, y]]
    p2 = client.patch(url, content=json.dumps({"geometry": {"type": "Polygon",
                                                            "coordinates": [ring]}}),
                      headers={"Content-Type": "application/merge-patch+json",
                               "Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/9214>",
                               **keys["planner"], "If-Match": p.headers["ETag"]})
    assert p2.status_code == 200, p2.text
    assert p2.json()["properties"]["area_m2"] == pytest.approx(100.0, abs=0.01)
    assert p2.json()["properties"]["owner_name"] == "Lê Văn Bí Mật"


def test_delete_204_then_404_and_audit_keeps_last_state(client, keys, conn) -> None:
    r = _post(client, _parcel("D-1"), keys["admin"])
    url, fid = r.headers["Location"], str(r.json()["id"])
    assert client.delete(url, headers=keys["admin"]).status_code == 428
    d = client.delete(url, headers={**keys["admin"], "If-Match": r.headers["ETag"]})
    assert d.status_code == 204 and d.content == b""
    assert client.get(url).status_code == 404
    assert client.delete(url, headers={**keys["admin"], "If-Match": "*"}).status_code == 404
    last = _audit(conn, "parcels", fid)[-1]
    assert last[0] == "delete" and last[3]["properties"]["parcel_no"] == "D-1"
    assert last[4] is None


def test_polygon_in_vn2000_stored_correctly(client, keys, conn) -> None:
    lon, lat = TRUONG_TIEN_LONLAT
    lon += 0.003  # on land, east of the bridge
    x, y = TO_9214.transform(lon, lat)
    ring = [(x, y), (x + 30, y), (x + 30, y + 20), (x, y + 20), (x, y)]
    body = _parcel("VN-1", {"type": "Polygon", "coordinates": [ring]})
    r = _post(client, body, keys["planner"],
              headers={"Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/9214>"})
    assert r.status_code == 201, r.text
    stored = r.json()["geometry"]["coordinates"][0][0]
    expected = [FROM_9214.transform(px, py) for px, py in ring]
    assert len(stored) == 5
    for (slon, slat), (elon, elat) in zip(stored, expected, strict=True):
        assert slon == pytest.approx(elon, abs=1e-7) and slat == pytest.approx(elat, abs=1e-7)
    assert r.json()["properties"]["area_m2"] == pytest.approx(600.0, abs=0.01)
    # EPSG:4326 by its EPSG name is latitude first (Part 2); CRS84 is longitude first.
    flipped = {"type": "Polygon", "coordinates": [[[b, a] for a, b in
                                                    _square(*DAI_NOI_LONLAT)["coordinates"][0]]]}
    r = _post(client, _parcel("LATLON-1", flipped), keys["planner"],
              headers={"Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/4326>"})
    assert r.status_code == 201, r.text
    assert shape(r.json()["geometry"]).centroid.x == pytest.approx(DAI_NOI_LONLAT[0], abs=1e-6)
    r = _post(client, _parcel("BADCRS-1"), keys["planner"], headers={"Content-Crs": "EPSG:2154"})
    assert r.status_code == 400 and r.json()["code"] == "UnknownCRS"
    huge = {"type": "Polygon", "coordinates": [[[0, 0], [1e30, 0], [1e30, 1e30], [0, 0]]]}
    r = _post(client, _parcel("HUGE-1", huge), keys["planner"],
              headers={"Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/3405>"})
    assert r.status_code == 400 and r.json()["code"] == "InvalidGeometry"


BOWTIE = {"type": "Polygon", "coordinates": [[
    [107.5774, 16.4689], [107.5776, 16.4691], [107.5776, 16.4689], [107.5774, 16.4691],
    [107.5774, 16.4689]]]}


@pytest.mark.parametrize("body,code,why", [
    (_parcel("B-1", color="red"), "InvalidParameterValue", "unknown properties: 'color'"),
    (_parcel("B-2", land_use="XYZ"), "InvalidParameterValue", "properties.land_use"),
    ({"type": "Feature", "geometry": _square(*DAI_NOI_LONLAT), "properties": {"parcel_no": "x"}},
     "InvalidParameterValue", "'map_sheet_no' is a required property"),
    (_parcel("B-3", area_m2="big"), "InvalidParameterValue", "properties.area_m2"),
    (_parcel("B-4", {"type": "Point", "coordinates": list(DAI_NOI_LONLAT)}), "InvalidGeometry",
     "takes MultiPolygon, not Point"),
    (_parcel("B-5", BOWTIE), "InvalidGeometry", "Self-intersection"),
    (_parcel("B-6", _square(*HANOI_LONLAT)), "OutsideHue", "outside Huế"),
    (_parcel("B-8", address="nul \u0000 byte"), "InvalidParameterValue", "refused by the"),
    (_parcel("B-7", {"type": "Polygon", "coordinates": "nope"}), "InvalidParameterValue",
     "geometry.coordinates"),
    ({"type": "FeatureCollection", "features": []}, "InvalidParameterValue", "required"),
    ([1, 2], "InvalidParameterValue", "not of type 'object'"),
])
def test_bad_bodies_are_400(client, keys, body, code, why) -> None:
    r = _post(client, body, keys["planner"])
    assert r.status_code == 400, r.text
    assert r.json()["code"] == code and why in r.json()["description"]


def test_protocol_errors(client, keys, settings) -> None:
    body = _parcel("X-1")
    r = client.post("/collections/parcels/items", content="{not json", headers={
        **GEOJSON, **keys["planner"]})
    assert r.status_code == 400 and "not valid JSON" in r.json()["description"]
    r = client.post("/collections/parcels/items", content=json.dumps(body),
                    headers={"Content-Type": "text/plain", **keys["planner"]})
    assert r.status_code == 415
    big = _parcel("X-2", address="x" * (settings.max_feature_body_bytes + 1))
    assert _post(client, big, keys["planner"]).status_code == 413
    assert _post(client, body, keys["planner"], "nowhere").status_code == 404
    r = _post(client, body, keys["admin"], "wards")
    assert r.status_code == 405 and r.json()["code"] == "MethodNotAllowed"
    r = client.put("/collections/parcels/items/999999999", content=json.dumps(body),
                   headers={**GEOJSON, **keys["planner"], "If-Match": "*"})
    assert r.status_code == 404
    r = client.patch("/collections/parcels/items/abc", content="{}",
                     headers={"Content-Type": "application/merge-patch+json",
                              **keys["planner"], "If-Match": "*"})
    assert r.status_code == 404


def test_roles_401_403(client, keys) -> None:
    body = _parcel("R-1")
    r = _post(client, body, None)
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    assert _post(client, body, {"X-API-Key": "hgk_bad_key"}).status_code == 401
    assert _post(client, body, keys["citizen"]).status_code == 403
    r = _post(client, body, keys["inspector"])  # inspectors edit construction only
    assert r.status_code == 403 and r.json()["code"] == "Forbidden"
    r = client.delete("/collections/parcels/items/1", headers={**keys["citizen"],
                                                               "If-Match": "*"})
    assert r.status_code == 403


def _construction(no: str, lonlat=DAI_NOI_LONLAT, **props: object) -> dict:
    return {"type": "Feature", "geometry": _square(*lonlat, half=0.00005),
            "properties": {"record_no": no, "kind": "violation", "status": "detected",
                           "issued_on": "2026-11-02", "floors": 2, **props}}


def test_inspectors_in_their_wards_and_notes_preserved(client, keys, conn) -> None:
    r = _post(client, _construction("V-1", inspector_notes="tường rào lấn chiếm"),
              keys["inspector"], "construction")
    assert r.status_code == 201, r.text
    url = r.headers["Location"]
    assert r.json()["properties"]["inspector_notes"] == "tường rào lấn chiếm"
    assert r.json()["properties"]["footprint_m2"] > 0
    assert _post(client, _construction("V-2"), keys["far_inspector"],
                 "construction").status_code == 403
    r2 = client.delete(url, headers={**keys["far_inspector"], "If-Match": "*"})
    assert r2.status_code == 403
    # A planner may not read or write inspectors' notes, and a replace keeps them.
    etag = client.get(url).headers["ETag"]
    r3 = client.put(url, content=json.dumps(_construction("V-1", inspector_notes="x")),
                    headers={**GEOJSON, **keys["planner"], "If-Match": etag})
    assert r3.status_code == 400 and "unknown properties" in r3.json()["description"]
    r4 = client.put(url, content=json.dumps(_construction("V-1", status="fined", floors=3)),
                    headers={**GEOJSON, **keys["planner"], "If-Match": etag})
    assert r4.status_code == 200, r4.text
    assert "inspector_notes" not in r4.json()["properties"]
    assert r4.json()["properties"]["issued_on"] == "2026-11-02"
    notes = conn.execute("SELECT inspector_notes, status, floors FROM construction "
                         "WHERE record_no = 'V-1'").fetchone()
    assert notes == ("tường rào lấn chiếm", "fined", 3)
    # Moving it out of the inspector's ward is refused.
    elsewhere = conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM admin_units "
        "WHERE level = 'ward' AND gso_code <> %s ORDER BY gso_code LIMIT 1) s",
        (_ward_at(conn, *DAI_NOI_LONLAT),)).fetchone()
    r5 = client.put(url, content=json.dumps(_construction("V-1", lonlat=elsewhere)), headers={
        **GEOJSON, **keys["inspector"], "If-Match": r4.headers["ETag"]})
    assert r5.status_code == 403 and "ward" in r5.json()["description"]
    # Database constraints are client errors, never a 500.
    r6 = _post(client, _construction("V-1"), keys["planner"], "construction")
    assert r6.status_code == 409 and r6.json()["code"] == "Conflict"
    r7 = _post(client, _construction("V-9", floors=500), keys["planner"], "construction")
    assert r7.status_code == 400
    r8 = _post(client, _construction("V-8", issued_on="2026-13-45"), keys["planner"],
               "construction")
    assert r8.status_code == 400 and "issued_on" in r8.json()["description"]


def test_points_layer_and_id_mismatch(client, keys, conn) -> None:
    poi = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [107.5780, 16.4695]},
           "properties": {"name": "Điểm thử", "category": "museum"}}
    r = _post(client, poi, keys["planner"], "tourism")
    assert r.status_code == 201, r.text
    assert r.json()["properties"]["ward_code"] == _ward_at(conn, 107.5780, 16.4695)
    url = r.headers["Location"]
    wrong = {**poi, "id": 1}
    r2 = client.put(url, content=json.dumps(wrong),
                    headers={**GEOJSON, **keys["planner"], "If-Match": r.headers["ETag"]})
    assert r2.status_code == 400 and "is not the feature" in r2.json()["description"]


def test_audit_table_is_append_only(conn) -> None:
    conn.execute("INSERT INTO feature_audit (actor, actor_role, via, operation, layer, "
                 "feature_id) VALUES ('x', 'admin', 'api_key', 'create', 'parcels', '1')")
    for stmt in ("UPDATE feature_audit SET actor = 'y'", "DELETE FROM feature_audit",
                 "TRUNCATE feature_audit"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            with conn.transaction():
                conn.execute(stmt)


def test_conformance_declares_part4(client) -> None:
    classes = client.get("/conformance").json()["conformsTo"]
    assert ("http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete"
            in classes)
