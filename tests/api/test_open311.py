"""Open311 GeoReport v2: discovery, services, filing with routing and geocoding, queries with
the 90-day window and pages, the specification's errors in JSON and XML, idempotency, privacy,
photos. Routing answers are checked against shapely/pyproj computed independently."""

from __future__ import annotations

import io
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import numpy as np
import psycopg
import pyproj
import pytest
import shapely
from fastapi.testclient import TestClient
from PIL import Image
from shapely.geometry import Point

from api.app import create_app
from gis.settings import Settings
from tests.common import DAI_NOI_LONLAT, HANOI_LONLAT

V2 = "/open311/v2"
TO_M = pyproj.Transformer.from_crs(4326, 9214, always_xy=True).transform
TO_LL = pyproj.Transformer.from_crs(9214, 4326, always_xy=True).transform
SECRET = {"first_name": "Nguyễn", "last_name": "Bảo Mật", "email": "bao.mat@example.vn",
          "phone": "0905123456"}


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def wards(database_url: str) -> dict[str, tuple[str, shapely.Geometry]]:
    """The wards as shapely geometries in EPSG:9214 (metres), by GSO code."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT gso_code, name, ST_AsBinary(geom) FROM admin_units "
                            "WHERE level = 'ward'").fetchall()
    return {code: (name, shapely.transform(shapely.from_wkb(bytes(wkb)), _to_m))
            for code, name, wkb in rows}


def _to_m(xy: np.ndarray) -> np.ndarray:
    return np.column_stack(TO_M(xy[:, 0], xy[:, 1]))


def _ward_of(wards: dict, lon: float, lat: float) -> str:
    p = Point(TO_M(lon, lat))
    return min(wards, key=lambda c: (wards[c][1].distance(p), c))


def _post(client: TestClient, fmt: str = "json", headers: dict | None = None, **form) -> dict:
    data = {"service_code": "waste", "description": "Rác tràn ra đường", **form}
    return client.post(f"{V2}/requests.{fmt}", data=data, headers=headers or {})


def _one(client: TestClient, rid: str) -> dict:
    r = client.get(f"{V2}/requests/{rid}.json")
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, list) and len(body) == 1
    return body[0]


def test_discovery_and_services_in_json_and_xml(client: TestClient) -> None:
    d = client.get(f"{V2}/discovery.json").json()
    assert d["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    x = ET.fromstring(client.get(f"{V2}/discovery.xml").content)
    assert x.tag == "discovery" and x.find("endpoints/endpoint/formats/format") is not None
    services = client.get(f"{V2}/services.json").json()
    assert {s["service_code"] for s in services} == {
        "roads", "lighting", "waste", "drainage", "trees", "construction", "noise",
        "public_order"}
    r = client.get(f"{V2}/services.xml")
    assert r.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(r.content)
    assert root.tag == "services" and len(root.findall("service")) == 8
    assert root.find("service/metadata").text == "true"
    defn = client.get(f"{V2}/services/drainage.json").json()
    attrs = {a["code"]: a for a in defn["attributes"]}
    assert attrs["danger"]["datatype"] == "singlevaluelist"
    assert {v["key"] for v in attrs["danger"]["values"]} == {"yes", "no"}
    assert attrs["depth_cm"]["datatype"] == "number"
    xdef = ET.fromstring(client.get(f"{V2}/services/drainage.xml").content)
    assert xdef.find("attributes/attribute/values/value/key") is not None


def test_errors_follow_the_specification(client: TestClient) -> None:
    r = client.get(f"{V2}/services/nope.json")
    assert r.status_code == 404
    assert r.json()[0]["code"] == 404 and r.json()[0]["description"]
    r = client.get(f"{V2}/services/nope.xml")
    assert r.status_code == 404
    err = ET.fromstring(r.content)
    assert err.tag == "errors" and err.find("error/code").text == "404"
    cases = [
        dict(service_code="nope", lat="16.47", long="107.58"),
        dict(service_code="waste"),  # no location
        dict(service_code="waste", lat="16.47", long="107.58", description="x" * 4001),
        dict(service_code="waste", lat="abc", long="107.58"),
        dict(service_code="waste", lat=str(HANOI_LONLAT[1]), long=str(HANOI_LONLAT[0])),
        dict(service_code="waste", address_string="zzqxv không có ở đâu"),
        dict(service_code="waste", lat="16.47", long="107.58", email="not-an-email"),
        dict(service_code="waste", lat="16.47", long="107.58", description="nul\x00byte"),
        dict(service_code="waste", lat="16.47", long="nan"),
        dict(service_code="drainage", lat="16.47", long="107.58",
             **{"attribute[depth_cm]": "deep"}),
    ]
    for form in cases:
        for fmt in ("json", "xml"):
            r = client.post(f"{V2}/requests.{fmt}", data=form)
            assert r.status_code == 400, (form, r.text)
            if fmt == "json":
                assert r.json()[0]["code"] == 400 and r.json()[0]["description"], r.text
            else:
                assert ET.fromstring(r.content).find("error/code").text == "400"
    for q in ({"start_date": "yesterday"}, {"start_date": "2026-01-01T00:00:00Z",
                                              "end_date": "2026-06-01T00:00:00Z"},
              {"status": "lost"}, {"page": "0"}, {"page_size": "1001"}):
        r = client.get(f"{V2}/requests.json", params=q)
        assert r.status_code == 400, (q, r.text)
    r = client.post(f"{V2}/requests.json", data={"service_code": "waste", "lat": "16.47",
                                                 "long": "107.58", "api_key": "wrong"})
    assert r.status_code == 403
    assert client.get(f"{V2}/requests/PA-1999-0000000.json").status_code == 404
    assert client.get(f"{V2}/tokens/nope.xml").status_code == 404


def test_filing_routes_to_the_ward_and_hides_the_reporter(client: TestClient,
                                                          wards: dict) -> None:
    lon, lat = 107.5905, 16.4580
    r = _post(client, lat=str(lat), long=str(lon), **SECRET)
    assert r.status_code == 201, r.text
    posted = r.json()[0]
    rid = posted["service_request_id"]
    assert isinstance(rid, str) and posted["token"] and "due by" in posted["service_notice"]
    got = _one(client, rid)
    code = _ward_of(wards, lon, lat)
    assert got["agency_responsible"] == f"{wards[code][0]} ({code})"
    assert got["status"] == "open" and got["x_status"] == "received"
    assert got["lat"] == pytest.approx(lat) and got["long"] == pytest.approx(lon)
    assert got["notes"][0]["status"] == "received"
    assert got["expected_datetime"] > got["requested_datetime"]
    for fmt in ("json", "xml"):
        text = client.get(f"{V2}/requests/{rid}.{fmt}").text
        text += client.get(f"{V2}/requests.{fmt}").text
        for secret in SECRET.values():
            assert secret not in text
    xml = ET.fromstring(client.get(f"{V2}/requests/{rid}.xml").content)
    assert xml.find("request/service_request_id").text == rid
    assert xml.find("request/agency_responsible").text.endswith(f"({code})")
    tok = client.get(f"{V2}/tokens/{posted['token']}.json").json()
    assert tok == [{"service_request_id": rid, "token": posted["token"]}]


def test_points_just_outside_go_to_the_nearest_ward_farther_is_refused(
        client: TestClient, wards: dict) -> None:
    union = shapely.union_all([g for _, g in wards.values()])
    near = union.buffer(120).exterior.interpolate(0.37, normalized=True)
    far = union.buffer(450).exterior.interpolate(0.37, normalized=True)
    assert 110 < union.distance(near) < 130
    lon, lat = TO_LL(near.x, near.y)
    r = _post(client, lat=str(lat), long=str(lon))
    assert r.status_code == 201, r.text
    got = _one(client, r.json()[0]["service_request_id"])
    code = _ward_of(wards, lon, lat)
    assert got["agency_responsible"].endswith(f"({code})")
    lon, lat = TO_LL(far.x, far.y)
    r = _post(client, lat=str(lat), long=str(lon))
    assert r.status_code == 400 and "outside Huế" in r.json()[0]["description"]


def test_address_string_is_geocoded_without_diacritics(client: TestClient) -> None:
    r = _post(client, address_string="Dai Noi")
    assert r.status_code == 201, r.text
    got = _one(client, r.json()[0]["service_request_id"])
    a = Point(TO_M(got["long"], got["lat"]))
    assert a.distance(Point(TO_M(*DAI_NOI_LONLAT))) < 150


def test_idempotency_key_makes_retries_safe(client: TestClient, database_url: str) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = _post(client, headers=key, lat="16.465", long="107.585")
    again = _post(client, headers=key, lat="16.465", long="107.585")
    assert first.status_code == 201 and again.status_code == 200
    rid = first.json()[0]["service_request_id"]
    assert again.json()[0]["service_request_id"] == rid
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM incident_idempotency i JOIN incidents r ON "
                            "r.id = i.incident_id WHERE i.key = %s AND r.ref = %s",
                            (key["Idempotency-Key"], rid)).fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM incident_events e JOIN incidents r ON "
                            "r.id = e.incident_id WHERE r.ref = %s", (rid,)).fetchone()[0] == 1
    other = _post(client, headers=key, lat="16.466", long="107.585")
    assert other.status_code == 409


def test_queries_window_pages_and_status(client: TestClient) -> None:
    code = "trees"
    made = [_post(client, service_code=code, lat="16.47", long=f"{107.57 + i / 1000}"
                  ).json()[0]["service_request_id"] for i in range(3)]
    page1 = client.get(f"{V2}/requests.json", params={"service_code": code, "page_size": 2})
    page2 = client.get(f"{V2}/requests.json", params={"service_code": code, "page_size": 2,
                                                       "page": 2})
    ids = [x["service_request_id"] for x in page1.json() + page2.json()]
    assert len(page1.json()) == 2 and set(made) <= set(ids) and len(ids) == len(set(ids))
    byid = client.get(f"{V2}/requests.json",
                      params={"service_request_id": ",".join(made[:2])}).json()
    assert sorted(x["service_request_id"] for x in byid) == sorted(made[:2])
    closed = client.get(f"{V2}/requests.json", params={"service_code": code,
                                                        "status": "closed"}).json()
    assert not set(made) & {x["service_request_id"] for x in closed}
    old = client.get(f"{V2}/requests.json", params={"start_date": "2020-01-01T00:00:00+07:00",
                                                     "service_code": code}).json()
    assert not set(made) & {x["service_request_id"] for x in old}
    xml = ET.fromstring(client.get(f"{V2}/requests.xml", params={"service_code": code}).content)
    assert xml.tag == "service_requests" and len(xml.findall("request")) >= 3


def test_public_order_locations_are_rounded_to_100_m(client: TestClient) -> None:
    lon, lat = 107.58437, 16.46321
    r = _post(client, service_code="public_order", lat=str(lat), long=str(lon),
              address_string="12 Lê Lợi")
    got = _one(client, r.json()[0]["service_request_id"])
    x, y = TO_M(lon, lat)
    ex, ey = TO_LL(round(x / 100) * 100, round(y / 100) * 100)
    assert got["long"] == pytest.approx(ex, abs=1e-7) and got["lat"] == pytest.approx(ey, abs=1e-7)
    assert got["address"] is None
    assert Point(TO_M(got["long"], got["lat"])).distance(Point(x, y)) <= 71


def _jpeg_with_gps() -> bytes:
    img = Image.new("RGB", (3000, 2000), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0110] = "Model X"
    exif.get_ifd(0x8825)[2] = (16.0, 28.0, 10.0)
    exif.get_ifd(0x8825)[1] = "N"
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def test_photos_are_sniffed_limited_and_stripped(client: TestClient) -> None:
    data = _jpeg_with_gps()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)
    base = {"service_code": "roads", "lat": "16.4650", "long": "107.5850"}
    r = client.post(f"{V2}/requests.json", data=base,
                    files={"media": ("p.jpg", data, "image/jpeg")})
    assert r.status_code == 201, r.text
    got = _one(client, r.json()[0]["service_request_id"])
    url = got["media_url"]
    assert url and "/incidents/photos/" in url
    img = client.get(url[url.index("/incidents/"):])
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    served = Image.open(io.BytesIO(img.content))
    assert served.format == "JPEG" and max(served.size) == 1024
    assert len(served.getexif()) == 0 and b"PhoneMaker" not in img.content
    fake = client.post(f"{V2}/requests.json", data=base,
                       files={"media": ("p.jpg", b"<html>not an image</html>", "image/jpeg")})
    assert fake.status_code == 415 and fake.json()[0]["code"] == 415
    png = io.BytesIO()
    Image.new("RGB", (10, 10)).save(png, "PNG")
    liar = client.post(f"{V2}/requests.json", data=base,
                       files={"media": ("p.jpg", png.getvalue(), "image/jpeg")})
    assert liar.status_code == 415
    big = client.post(f"{V2}/requests.json", data=base,
                      files={"media": ("p.jpg", b"\xff\xd8" + b"0" * (11 * 1024 * 1024),
                                       "image/jpeg")})
    assert big.status_code == 413
