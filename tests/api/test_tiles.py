"""OGC API – Tiles over HTTP: metadata, TileJSON, tiles, caching, invalidation by any write."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import mapbox_vector_tile
import morecantile
import psycopg
import pytest
import redis
from fastapi.testclient import TestClient
from shapely.geometry import box

from api.app import create_app
from gis.settings import Settings
from gis.tiles.cache import TileKey
from gis.tiles.invalidation import LISTENER_NAME
from tests.common import TRUONG_TIEN_LONLAT

WMQ = morecantile.tms.get("WebMercatorQuad")
MVT = "application/vnd.mapbox-vector-tile"
# Three 30 m test parcels near Trường Tiền bridge (EPSG:4326), source 'tiles-test'.
LON, LAT = TRUONG_TIEN_LONLAT
TEST_PARCELS = [box(LON + i * 0.0004, LAT + 0.001, LON + i * 0.0004 + 0.0003, LAT + 0.0013)
                for i in range(3)]
CENTRE = (LON + 0.0005, LAT + 0.00115)


@pytest.fixture(scope="module")
def parcel_ids(database_url: str) -> Iterator[list[int]]:
    with psycopg.connect(database_url) as conn:
        ids = [conn.execute(
            "INSERT INTO land_parcels (parcel_no, map_sheet_no, land_use, area_m2, owner_name, "
            "ward_code, source, geom) VALUES (%s, 'TT', 'ODT', 900, 'Chủ Riêng', '19753', "
            "'tiles-test', ST_Multi(ST_GeomFromText(%s, 4326))) RETURNING id",
            (f"T{i}", g.wkt)).fetchone()[0] for i, g in enumerate(TEST_PARCELS)]
    try:
        yield ids
    finally:
        with psycopg.connect(database_url) as conn:
            conn.execute("DELETE FROM land_parcels WHERE source = 'tiles-test'")


def _settings(settings: Settings, tmp: Path, **kw) -> Settings:
    """The session database with a private tile cache directory."""
    return settings.model_copy(update={"var_dir": tmp, **kw})


@pytest.fixture(scope="module")
def client(settings: Settings, parcel_ids: list[int],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(settings, tmp_path_factory.mktemp("tc")))) as c:
        yield c


def _url(z: int, lonlat=CENTRE, layer: str = "parcels") -> str:
    t = WMQ.tile(*lonlat, z)
    return f"/collections/{layer}/tiles/WebMercatorQuad/{t.z}/{t.y}/{t.x}"


def _land_uses(content: bytes, ids: list[int]) -> dict[int, str]:
    feats = mapbox_vector_tile.decode(content).get("parcels", {}).get("features", [])
    return {f["id"]: f["properties"]["land_use"] for f in feats if f.get("id") in ids}


def _eventually(check: Callable[[], bool], timeout: float = 5.0) -> float:
    """Seconds until ``check()`` holds (NOTIFY is delivered right after the commit)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if check():
            return time.monotonic() - t0
        time.sleep(0.02)
    raise AssertionError("condition not reached")


# ------------------------------------------------------------------ metadata
def test_tile_matrix_sets(client: TestClient) -> None:
    ids = [t["id"] for t in client.get("/tileMatrixSets").json()["tileMatrixSets"]]
    assert ids == ["WebMercatorQuad", "WorldCRS84Quad"]
    doc = client.get("/tileMatrixSets/WorldCRS84Quad").json()
    assert doc["id"] == "WorldCRS84Quad" and doc["tileMatrices"][0]["matrixWidth"] == 2


def test_tilesets_and_tileset_metadata(client: TestClient) -> None:
    sets = client.get("/collections/parcels/tiles").json()["tilesets"]
    assert {s["tileMatrixSetURI"].rsplit("/", 1)[1] for s in sets} == {
        "WebMercatorQuad", "WorldCRS84Quad"}
    item = next(link for link in sets[0]["links"] if link["rel"] == "item")
    assert item["href"].endswith("/collections/parcels/tiles/WebMercatorQuad/"
                                 "{tileMatrix}/{tileRow}/{tileCol}")
    meta = client.get("/collections/parcels/tiles/WebMercatorQuad").json()
    assert meta["dataType"] == "vector" and meta["minTileMatrix"] == "11"
    props = meta["layers"][0]["propertiesSchema"]["properties"]
    assert "land_use" in props and "owner_name" not in props
    multi = client.get("/tiles/WebMercatorQuad?collections=wards,incidents").json()
    assert [la["id"] for la in multi["layers"]] == ["wards", "incidents"]
    conf = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core" in conf
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt" in conf


def test_tilejson(client: TestClient) -> None:
    doc = client.get("/collections/parcels/tiles/WebMercatorQuad/tilejson.json").json()
    assert doc["tilejson"] == "3.0.0"
    assert doc["tiles"][0].endswith("/collections/parcels/tiles/WebMercatorQuad/{z}/{y}/{x}")
    assert (doc["minzoom"], doc["maxzoom"]) == (11, 22)
    assert "OpenStreetMap" in doc["attribution"]
    w, s, e, n = doc["bounds"]
    assert w <= TEST_PARCELS[0].bounds[0] and e >= TEST_PARCELS[-1].bounds[2] and s < n
    fields = doc["vector_layers"][0]["fields"]
    assert fields["area_m2"] == "Number" and "owner_name" not in fields
    multi = client.get("/tiles/WebMercatorQuad/tilejson.json?collections=wards,parcels").json()
    assert [v["id"] for v in multi["vector_layers"]] == ["wards", "parcels"]
    assert multi["tiles"][0].endswith("/tiles/WebMercatorQuad/{z}/{y}/{x}"
                                      "?collections=wards,parcels")
    assert multi["minzoom"] == 6
    assert "count" in client.get("/collections/incidents/tiles/WebMercatorQuad/tilejson.json"
                                 ).json()["vector_layers"][0]["fields"]


# ------------------------------------------------------------------ tiles
def test_tile_headers_etag_and_304(client: TestClient, parcel_ids: list[int]) -> None:
    r = client.get(_url(17))
    assert r.status_code == 200 and r.headers["content-type"] == MVT
    assert r.headers["etag"].startswith('"') and "public" in r.headers["cache-control"]
    assert set(_land_uses(r.content, parcel_ids)) == set(parcel_ids)
    again = client.get(_url(17), headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.headers["etag"] == r.headers["etag"]
    assert again.content == b""
    other = client.get(_url(17), headers={"If-None-Match": '"nope"'})
    assert other.status_code == 200 and other.content == r.content
    empty = client.get(_url(14, (108.5, 17.5)))  # the sea
    assert empty.status_code == 204 and empty.headers["etag"]


def test_multi_layer_tile_names_layers_by_collection(client: TestClient) -> None:
    t = WMQ.tile(*CENTRE, 15)
    r = client.get(f"/tiles/WebMercatorQuad/15/{t.y}/{t.x}?collections=wards,parcels,tourism")
    assert r.status_code == 200
    layers = mapbox_vector_tile.decode(r.content)
    assert {"wards", "parcels"} <= set(layers) <= {"wards", "parcels", "tourism"}
    single = client.get(_url(15)).content
    assert mapbox_vector_tile.decode(single)["parcels"] == layers["parcels"]
    everything = client.get(f"/tiles/WebMercatorQuad/15/{t.y}/{t.x}")
    assert set(mapbox_vector_tile.decode(everything.content)) >= {"wards", "parcels"}


def test_fast_path_answers_tile_gets_before_routing(client: TestClient,
                                                  parcel_ids: list[int]) -> None:
    """``TileFastPath`` answers a tile GET itself (hit or miss, 200/304/204, the route's
    bytes and headers) and hands anything else to the app behind it."""
    from api.tiles import TileFastPath

    behind: list[str] = []

    async def app(scope, receive, send) -> None:  # what FastAPI would be
        behind.append(scope["path"])
        await send({"type": "http.response.start", "status": 599, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    fast = TileFastPath(app, client.app.state)

    def get(path: str, query: bytes = b"", inm: str | None = None):
        sent: list[dict] = []

        async def call() -> None:
            async def receive() -> dict:
                return {"type": "http.request", "body": b""}

            async def send(message: dict) -> None:
                sent.append(message)

            headers = [(b"if-none-match", inm.encode())] if inm else []
            await fast({"type": "http", "method": "GET", "path": path, "query_string": query,
                        "headers": headers}, receive, send)

        client.portal.call(call)  # the app's own event loop (its pool and LISTEN)
        return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]

    t = WMQ.tile(*CENTRE, 16)
    path = f"/collections/parcels/tiles/WebMercatorQuad/16/{t.y}/{t.x}"
    status, headers, body = get(path)  # a miss: made here
    assert status == 200 and headers[b"content-type"] == MVT.encode()
    assert int(headers[b"content-length"]) == len(body)
    assert set(_land_uses(body, parcel_ids)) == set(parcel_ids)
    assert get(path) == (status, headers, body)  # a hit
    status304, headers304, body304 = get(path, inm=headers[b"etag"].decode())
    assert (status304, body304) == (304, b"") and headers304[b"etag"] == headers[b"etag"]
    sea = WMQ.tile(108.5, 17.5, 14)
    assert get(f"/collections/parcels/tiles/WebMercatorQuad/14/{sea.y}/{sea.x}")[0] == 204
    composite = f"/tiles/WebMercatorQuad/16/{t.y}/{t.x}"
    assert get(composite, b"collections=parcels")[0] == 200
    assert not behind
    # The route behind it (an extra query parameter: not the fast path's) agrees.
    routed = client.get(composite + "?collections=parcels&f=mvt")
    assert routed.content == get(composite, b"collections=parcels")[2]
    assert routed.headers["etag"] == get(composite, b"collections=parcels")[1][b"etag"].decode()
    # Everything it does not fully understand goes behind, errors included.
    for other, query in [("/collections/parcels/tiles/WebMercatorQuad/3/1/8", b""),
                         ("/collections/nope/tiles/WebMercatorQuad/3/1/1", b""),
                         ("/collections/parcels/tiles/Nope/3/1/1", b""),
                         ("/tiles/WebMercatorQuad/3/1/1", b"collections=,"),
                         ("/collections/parcels/items", b"")]:
        assert get(other, query)[0] == 599, other
    assert len(behind) == 5


@pytest.mark.parametrize(("url", "status", "code"), [
    ("/tileMatrixSets/Nope", 404, "TileMatrixSetNotFound"),
    ("/collections/parcels/tiles/Nope", 404, "TileMatrixSetNotFound"),
    ("/collections/parcels/tiles/Nope/tilejson.json", 404, "TileMatrixSetNotFound"),
    ("/collections/nope/tiles", 404, "LayerNotFound"),
    ("/collections/flood-depth/tiles/WebMercatorQuad/3/1/1", 404, "LayerNotFound"),
    ("/collections/parcels/tiles/WebMercatorQuad/3/1/8", 404, "InvalidTile"),
    ("/collections/parcels/tiles/WebMercatorQuad/-1/0/0", 404, "InvalidTile"),
    ("/collections/parcels/tiles/WorldCRS84Quad/0/1/0", 404, "InvalidTile"),
    ("/collections/parcels/tiles/WebMercatorQuad/99/0/0", 404, "InvalidTile"),
    ("/collections/parcels/tiles/WebMercatorQuad/3/x/1", 400, "InvalidParameterValue"),
    ("/tiles/WebMercatorQuad/3/1/1?collections=nope", 404, "LayerNotFound"),
    ("/tiles/WebMercatorQuad/3/1/1?collections=,", 400, "InvalidParameterValue"),
    ("/tiles/Nope/3/1/1", 404, "TileMatrixSetNotFound"),
    ("/tiles/WebMercatorQuad/tilejson.json?collections=elevation", 404, "LayerNotFound"),
])
def test_bad_input(client: TestClient, url: str, status: int, code: str) -> None:
    r = client.get(url)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code and r.json()["description"]


# ------------------------------------------------------------------ invalidation
def test_direct_sql_update_invalidates_every_zoom_and_composite(
        client: TestClient, database_url: str, parcel_ids: list[int]) -> None:
    target = parcel_ids[1]
    urls = [_url(z) for z in (14, 16, 18)]
    t = WMQ.tile(*CENTRE, 16)
    composite = f"/tiles/WebMercatorQuad/16/{t.y}/{t.x}?collections=wards,parcels"
    block_url = _url(12)

    def blocks() -> list:
        return sorted((f["properties"]["land_use"], f["properties"]["parcels"]) for f in
                      mapbox_vector_tile.decode(client.get(block_url).content)["parcels"][
                          "features"])

    before = [client.get(u) for u in urls + [composite]]
    assert all(_land_uses(r.content, [target]) == {target: "ODT"} for r in before)
    blocks_before = blocks()
    svc = client.app.state.tile_service
    assert len(svc.cache.memory) > 0
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE land_parcels SET land_use = 'NTD' WHERE id = %s", (target,))
    _eventually(lambda: _land_uses(client.get(urls[0]).content, [target]) == {target: "NTD"})
    for u in urls + [composite]:
        r = client.get(u)
        assert _land_uses(r.content, [target]) == {target: "NTD"}, u
    # The land-use blocks of z11–13 follow too: an NTD block appeared in the test cell.
    assert blocks() != blocks_before and any(b[0] == "NTD" for b in blocks())
    # A conditional request with the old ETag now gets the new tile.
    r = client.get(urls[1], headers={"If-None-Match": before[1].headers["etag"]})
    assert r.status_code == 200
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE land_parcels SET land_use = 'ODT' WHERE id = %s", (target,))
        conn.execute("DELETE FROM land_parcels WHERE id = %s", (parcel_ids[2],))
    _eventually(lambda: parcel_ids[2] not in _land_uses(client.get(urls[2]).content,
                                                        parcel_ids))
    assert _land_uses(client.get(urls[1]).content, [target]) == {target: "ODT"}


def test_far_writes_keep_cached_tiles(client: TestClient, database_url: str,
                                      parcel_ids: list[int]) -> None:
    url = _url(17)
    svc = client.app.state.tile_service
    t = WMQ.tile(*CENTRE, 17)
    key = TileKey("mvt", ("parcels",), "WebMercatorQuad", 17, t.x, t.y)
    # Cached once no earlier invalidation is in flight.
    _eventually(lambda: client.get(url).status_code == 200 and key in svc.cache.memory._items)
    seen = svc.messages
    with psycopg.connect(database_url) as conn:  # 20 km away, then undone
        conn.execute("UPDATE tourism_pois SET name = name WHERE id = (SELECT min(id) FROM "
                     "tourism_pois)")
        conn.execute("INSERT INTO land_parcels (parcel_no, map_sheet_no, land_use, ward_code, "
                     "source, geom) VALUES ('F', 'F', 'LUC', '19753', 'tiles-test', "
                     "ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(107.40, 16.30), 4326), "
                     "0.0002)))")
    _eventually(lambda: svc.messages >= seen + 2)
    assert key in svc.cache.memory._items


def test_lost_listen_connection_disables_the_cache_until_back(
        client: TestClient, database_url: str) -> None:
    svc = client.app.state.tile_service
    client.get(_url(16))
    assert svc.cache.enabled and len(svc.cache.memory) > 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        n = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                         "WHERE application_name = %s AND datname = current_database()",
                         (LISTENER_NAME,)).fetchone()[0]
    assert n >= 1
    _eventually(lambda: not svc.cache.enabled, timeout=8)
    assert len(svc.cache.memory) == 0
    _eventually(lambda: svc.cache.enabled, timeout=10)
    assert client.get(_url(16)).status_code == 200


def test_writes_while_nobody_listens_are_replayed(settings: Settings, database_url: str,
                                                 parcel_ids: list[int], tmp_path: Path) -> None:
    s = _settings(settings, tmp_path)
    target = parcel_ids[0]
    with TestClient(create_app(s)) as c:
        assert _land_uses(c.get(_url(18)).content, [target]) == {target: "ODT"}
    assert any((tmp_path / "tile-cache" / "mvt" / "parcels").rglob("*.mvt"))
    with psycopg.connect(database_url) as conn:  # the server is down meanwhile
        conn.execute("UPDATE land_parcels SET land_use = 'TMD' WHERE id = %s", (target,))
    try:
        with TestClient(create_app(s)) as c:
            assert _land_uses(c.get(_url(18)).content, [target]) == {target: "TMD"}
    finally:
        with psycopg.connect(database_url) as conn:
            conn.execute("UPDATE land_parcels SET land_use = 'ODT' WHERE id = %s", (target,))


def test_redis_cache_shared_and_invalidated(settings: Settings, database_url: str,
                                           parcel_ids: list[int], redis_url: str,
                                           tmp_path: Path) -> None:
    s = _settings(settings, tmp_path, redis_url=redis_url, tile_cache_disk=False)
    r = redis.Redis.from_url(redis_url)
    r.flushdb()
    target = parcel_ids[0]
    t = WMQ.tile(*CENTRE, 17)
    name = f"huegis:tile:mvt/parcels/WebMercatorQuad/17/{t.x}/{t.y}.mvt"
    with TestClient(create_app(s)) as a, TestClient(create_app(s)) as b:
        first = a.get(_url(17))
        assert r.exists(name)
        # The second worker answers from Redis (same ETag) without computing.
        assert b.get(_url(17)).headers["etag"] == first.headers["etag"]
        with psycopg.connect(database_url) as conn:
            conn.execute("UPDATE land_parcels SET land_use = 'DGD' WHERE id = %s", (target,))
        try:
            _eventually(lambda: not r.exists(name))
            for c in (a, b):
                _eventually(lambda c=c: _land_uses(c.get(_url(17)).content, [target])
                            == {target: "DGD"})
        finally:
            with psycopg.connect(database_url) as conn:
                conn.execute("UPDATE land_parcels SET land_use = 'ODT' WHERE id = %s",
                             (target,))


def test_bulk_load_leaves_the_blocks_to_a_worker(client: TestClient, database_url: str) -> None:
    """A statement over BULK_ROWS parcels does not dissolve in the transaction: a worker
    rebuilds the land-use blocks right after, and every block tile follows."""
    from importlib import import_module

    bulk = import_module("migrations.versions.0005_tiles").BULK_ROWS
    n = bulk + 1
    side = int(n ** 0.5) + 1
    svc = client.app.state.tile_service
    z12 = "/collections/parcels/tiles/WebMercatorQuad/12/{y}/{x}"
    t = WMQ.tile(107.452, 16.402, 12)
    url = z12.format(y=t.y, x=t.x)
    assert client.get(url).status_code == 204  # nothing there yet
    sql = ("INSERT INTO land_parcels (parcel_no, map_sheet_no, land_use, ward_code, source, "
           "geom) SELECT 'B' || i, 'BULK', 'LUC', '19753', 'tiles-test', ST_Multi("
           "ST_MakeEnvelope(107.45 + (i %% %(s)s) * 0.0001, 16.40 + (i / %(s)s) * 0.0001, "
           "107.45 + (i %% %(s)s) * 0.0001 + 0.00004, 16.40 + (i / %(s)s) * 0.0001 + 0.00004, "
           "4326)) FROM generate_series(1, %(n)s) AS i")
    try:
        with psycopg.connect(database_url) as conn:
            conn.execute(sql, {"s": side, "n": n})
        with psycopg.connect(database_url) as conn:  # the insert itself left them dirty
            assert conn.execute("SELECT blocks_dirty FROM tiles_state").fetchone()[0] or \
                svc.messages > 0
        _eventually(lambda: client.get(url).status_code == 200, timeout=60)
        feats = mapbox_vector_tile.decode(client.get(url).content)["parcels"]["features"]
        assert sum(f["properties"]["parcels"] for f in feats if
                   f["properties"]["land_use"] == "LUC") >= n * 0.9
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT blocks_dirty FROM tiles_state").fetchone()[0] is False
            assert conn.execute(
                "SELECT (SELECT count(*) FROM land_parcels) = "
                "(SELECT sum(parcels) FROM tiles_parcel_blocks)").fetchone()[0]
    finally:
        with psycopg.connect(database_url) as conn:
            conn.execute("DELETE FROM land_parcels WHERE map_sheet_no = 'BULK'")
        _eventually(lambda: client.get(url).status_code == 204, timeout=60)


@pytest.mark.parametrize("slots", [1, 3])
def test_tile_builds_per_worker_are_bounded(settings: Settings, parcel_ids: list[int],
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            slots: int) -> None:
    """``HUEGIS_TILE_BUILD_CONCURRENCY``: at most that many tiles are built in the database
    at once by one worker, however many misses arrive together (the real builder runs; the
    wrapper only counts)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from gis import tiles as gis_tiles

    real, state = gis_tiles.layer_tile, {"now": 0, "most": 0}
    lock = threading.Lock()

    async def counted(*args, **kw):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        try:
            return await real(*args, **kw)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(gis_tiles, "layer_tile", counted)
    urls = [_url(z, (LON + dx * 0.01, LAT + dy * 0.01)) for z in (15, 16)
            for dx in range(-2, 3) for dy in range(-1, 2)]
    with TestClient(create_app(_settings(settings, tmp_path, tile_build_concurrency=slots))) \
            as c, ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda u: c.get(u).status_code, urls))
    assert set(codes) <= {200, 204} and len(codes) == 30
    assert state["most"] == slots if slots == 1 else 1 < state["most"] <= slots
