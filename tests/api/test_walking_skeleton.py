"""The walking skeleton: landing page, health, collections, items and vector tiles."""

import socket
from collections.abc import Iterator

import mapbox_vector_tile
import morecantile
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import box, shape

from api.app import create_app
from gis import db
from gis.settings import Settings
from layers import CATALOG
from tests.common import CENTRAL_HUE_BBOX, DAI_NOI_LONLAT

WMQ = morecantile.tms.get("WebMercatorQuad")
# Twelve 40 m x 40 m test parcels in a row east of Đại Nội, each with a private owner name.
PARCELS = [box(107.5800 + i * 0.0005, 16.4660, 107.5804 + i * 0.0005, 16.4664)
           for i in range(12)]


@pytest.fixture(scope="module")
def parcels(database_url: str) -> Iterator[list[int]]:
    with psycopg.connect(database_url) as conn:
        ids = [conn.execute(
            "INSERT INTO land_parcels (parcel_no, map_sheet_no, land_use, area_m2, owner_name, "
            "ward_code, source, geom) VALUES (%s, 'T1', 'ODT', 1600, 'Nguyễn Văn Bí Mật', "
            "'19753', 'test', ST_Multi(ST_GeomFromText(%s, 4326))) RETURNING id",
            (str(i + 1), g.wkt)).fetchone()[0] for i, g in enumerate(PARCELS)]
        conn.execute("INSERT INTO incidents (ref, category, reporter_name, reporter_phone, "
                     "ward_code, geom) VALUES ('PA-T-1', 'roads', 'Trần Thị Riêng Tư', "
                     "'0905000000', '19753', ST_SetSRID(ST_MakePoint(%s, %s), 4326))",
                     DAI_NOI_LONLAT)
    try:
        yield ids
    finally:
        with psycopg.connect(database_url) as conn:
            conn.execute("DELETE FROM land_parcels WHERE source = 'test'")
            conn.execute("DELETE FROM incidents WHERE ref = 'PA-T-1'")


@pytest.fixture(scope="module")
def client(settings: Settings, parcels: list[int]) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def test_landing_links_and_attribution(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    body = r.json()
    rels = {link["rel"] for link in body["links"]}
    assert {"self", "service-desc", "data", "status"} <= rels
    assert "OpenStreetMap contributors" in body["attribution"]


def test_openapi_documents_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/", "/health", "/collections", "/collections/{collection_id}",
            "/collections/{collection_id}/items",
            "/collections/{collection_id}/items/{feature_id}",
            "/collections/{collection_id}/tiles/{tms_id}/{z}/{y}/{x}"} <= set(paths)
    assert client.get("/docs").status_code == 200


def test_health(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["schema_revision"] == db.head_revision()


def test_collections_from_catalog(client: TestClient) -> None:
    body = client.get("/collections").json()
    assert [c["id"] for c in body["collections"]] == list(CATALOG)
    parcels = next(c for c in body["collections"] if c["id"] == "parcels")
    assert "owner_name" not in parcels["properties"]
    assert any(link["rel"] == "items" for link in parcels["links"])


def test_collection_extent(client: TestClient) -> None:
    body = client.get("/collections/wards").json()
    w, s, e, n = body["extent"]["spatial"]["bbox"][0]
    assert 107.0 < w < 107.1 and 108.1 < e < 108.3 and 15.9 < s < 16.1 and 16.7 < n < 16.8


def test_collection_extent_from_statistics(client: TestClient, database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ANALYZE land_parcels")
    w, s, e, n = client.get("/collections/parcels").json()["extent"]["spatial"]["bbox"][0]
    assert box(w, s, e, n).intersects(shapely.union_all(PARCELS))


def test_items_paging_with_next_link(client: TestClient) -> None:
    r = client.get("/collections/wards/items", params={"limit": 15})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    page1 = r.json()
    assert page1["numberReturned"] == 15
    nxt = next(link["href"] for link in page1["links"] if link["rel"] == "next")
    ids = [f["id"] for f in page1["features"]]
    seen = set(ids)
    while nxt:
        page = client.get(nxt).json()
        seen |= {f["id"] for f in page["features"]}
        nxt = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert len(seen) == 40


def test_items_bbox_matches_shapely(client: TestClient, parcels: list[int]) -> None:
    bbox = (107.5801, 16.4659, 107.5822, 16.4665)
    r = client.get("/collections/parcels/items",
                   params={"bbox": ",".join(map(str, bbox)), "limit": 1000})
    got = {f["id"] for f in r.json()["features"] if f["properties"]["source"] == "test"}
    expected = {pid for pid, g in zip(parcels, PARCELS, strict=True)
                if g.intersects(box(*bbox))}
    assert got == expected and 0 < len(expected) < len(PARCELS)
    feature = r.json()["features"][0]
    assert shape(feature["geometry"]).is_valid


def test_private_fields_never_leave(client: TestClient) -> None:
    text = client.get("/collections/parcels/items", params={"limit": 10000}).text
    assert "owner_name" not in text and "Bí Mật" not in text
    text = client.get("/collections/incidents/items", params={"limit": 10000}).text
    assert "reporter" not in text and "Riêng Tư" not in text and "0905000000" not in text


def test_next_links_use_a_keyset_cursor(client: TestClient, parcels: list[int]) -> None:
    area = {"bbox": ",".join(map(str, shapely.union_all(PARCELS).bounds))}
    first = client.get("/collections/parcels/items", params={"limit": 5, **area}).json()
    nxt = next(link["href"] for link in first["links"] if link["rel"] == "next")
    assert f"after={first['features'][-1]['id']}" in nxt
    second = client.get(nxt).json()
    assert [f["id"] for f in second["features"]] == sorted(parcels)[5:10]
    r = client.get("/collections/parcels/items", params={"after": "x"})
    assert r.status_code == 400 and r.json()["code"] == "InvalidParameterValue"
    offset = client.get("/collections/parcels/items",
                        params={"limit": 5, "offset": 5, **area}).json()
    assert [f["id"] for f in offset["features"]] == sorted(parcels)[5:10]
    assert any(link["rel"] == "prev" for link in offset["links"])


def test_tile_feature_cap(settings: Settings, parcels: list[int]) -> None:
    capped = settings.model_copy(update={"tile_max_features": 3})
    t = WMQ.tile(107.5810, 16.4662, 15)
    with TestClient(create_app(capped)) as c:
        r = c.get(f"/collections/parcels/tiles/WebMercatorQuad/{t.z}/{t.y}/{t.x}")
    assert len(_decode(r.content, t.z, t.x, t.y)["parcels"]["features"]) == 3


def test_item_by_id(client: TestClient, parcels: list[int]) -> None:
    r = client.get(f"/collections/parcels/items/{parcels[0]}")
    assert r.status_code == 200
    assert r.json()["properties"]["parcel_no"] == "1"
    assert "owner_name" not in r.json()["properties"]
    ward = client.get("/collections/wards/items/19753").json()
    assert ward["properties"]["name"] == "Phường Phú Xuân"


def _decode(content: bytes, z: int, x: int, y: int) -> dict:
    return mapbox_vector_tile.decode(content)


def test_vector_tile_of_central_hue_shows_parcels(client: TestClient) -> None:
    t = WMQ.tile(107.5812, 16.4662, 18)  # every public field from z18 (below: what is drawn)
    r = client.get(f"/collections/parcels/tiles/WebMercatorQuad/{t.z}/{t.y}/{t.x}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    tile = _decode(r.content, t.z, t.x, t.y)
    feats = tile["parcels"]["features"]
    assert any(f["properties"].get("source") == "test" for f in feats)
    assert all("owner_name" not in f["properties"] for f in feats)
    assert all(isinstance(f["id"], int) for f in feats)


def test_incident_tile_keeps_reporter_private(client: TestClient) -> None:
    t = WMQ.tile(*DAI_NOI_LONLAT, 15)
    r = client.get(f"/collections/incidents/tiles/WebMercatorQuad/{t.z}/{t.y}/{t.x}")
    assert r.status_code == 200
    props = [f["properties"] for f in _decode(r.content, t.z, t.x, t.y)["incidents"]["features"]]
    assert any(p.get("ref") == "PA-T-1" for p in props)
    assert not any(k.startswith("reporter") for p in props for k in p)
    assert b"0905000000" not in r.content


def test_empty_tile_is_204(client: TestClient) -> None:
    t = WMQ.tile(108.5, 17.5, 14)  # the sea east of Huế
    assert client.get(f"/collections/parcels/tiles/WebMercatorQuad/{t.z}/{t.y}/{t.x}"
                      ).status_code == 204
    t = WMQ.tile(107.58, 16.46, 5)  # below the parcels' zoom range
    assert client.get(f"/collections/parcels/tiles/WebMercatorQuad/{t.z}/{t.y}/{t.x}"
                      ).status_code == 204


@pytest.mark.parametrize(("url", "status", "code"), [
    ("/collections/nope", 404, "LayerNotFound"),
    ("/collections/nope/items", 404, "LayerNotFound"),
    ("/collections/flood-depth/items", 404, "LayerNotFound"),
    ("/collections/parcels/items?bbox=1,2,3", 400, "InvalidBBox"),
    ("/collections/parcels/items?bbox=a,b,c,d", 400, "InvalidBBox"),
    ("/collections/parcels/items?bbox=108,16,107,17", 400, "InvalidBBox"),
    ("/collections/parcels/items?limit=0", 400, "InvalidParameterValue"),
    ("/collections/parcels/items?limit=10001", 400, "InvalidParameterValue"),
    ("/collections/parcels/items?limit=abc", 400, "InvalidParameterValue"),
    ("/collections/parcels/items?offset=-1", 400, "InvalidParameterValue"),
    ("/collections/parcels/items/999999999", 404, "FeatureNotFound"),
    ("/collections/parcels/tiles/WebMercatorQuad/3/8/1", 404, "InvalidTile"),
    ("/collections/parcels/tiles/WebMercatorQuad/25/0/0", 404, "InvalidTile"),
    ("/collections/parcels/tiles/NoSuchTMS/3/1/1", 404, "TileMatrixSetNotFound"),
    ("/collections/parcels/tiles/WebMercatorQuad/a/1/1", 400, "InvalidParameterValue"),
    ("/collections/nope/tiles/WebMercatorQuad/3/1/1", 404, "LayerNotFound"),
    ("/no/such/path", 404, "NotFound"),
])
def test_bad_input_gets_clear_json_errors(client: TestClient, url: str, status: int,
                                          code: str) -> None:
    r = client.get(url)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code and body["description"]


def test_central_hue_bbox_constant_is_in_huế() -> None:
    assert shapely.box(*CENTRAL_HUE_BBOX).contains(shapely.Point(DAI_NOI_LONLAT))


def test_statement_timeout_answers_503(settings: Settings) -> None:
    """A query over the statement timeout is cancelled and answered cleanly, not with a 500."""
    from fastapi import Request

    app = create_app(settings.model_copy(update={"statement_timeout_ms": 100}))

    @app.get("/slow")
    async def slow(request: Request) -> dict:
        pool = await request.app.state.pools.get()
        await pool.execute("SELECT pg_sleep(2)")
        return {}

    with TestClient(app) as c:
        r = c.get("/slow")
        assert r.status_code == 503
        assert r.json()["code"] == "QueryTimeout"
        assert c.get("/health").status_code == 200  # the pool is still usable


def test_database_down_gives_503_not_500(tmp_path) -> None:
    """The service starts without its database and answers 503 until it is back."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the socket is closed
    down = Settings(database_url=f"postgresql://postgres@127.0.0.1:{port}/huegis",
                    var_dir=tmp_path)
    with TestClient(create_app(down)) as c:
        assert c.get("/").status_code == 200
        r = c.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "unavailable"
        r = c.get("/collections/parcels/items")
        assert r.status_code == 503 and r.json()["code"] == "DatabaseUnavailable"
        r = c.get("/collections/parcels/tiles/WebMercatorQuad/15/14863/26176")
        assert r.status_code == 503 and r.json()["code"] == "DatabaseUnavailable"


def test_unmigrated_database_gives_503_with_what_to_do(empty_database: str, tmp_path) -> None:
    with TestClient(create_app(Settings(database_url=empty_database, var_dir=tmp_path))) as c:
        r = c.get("/collections/parcels/items")
        assert r.status_code == 503 and r.json()["code"] == "DatabaseNotMigrated"
        assert "huegis db migrate" in r.json()["description"]
