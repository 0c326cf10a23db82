"""QGIS as a real client: Debian's QGIS 3.22 (``python3-qgis``), headless, against a real
``huegis serve`` on the demo data: every feature collection through the OAPIF provider,
WMS capabilities, GetMap in EPSG:4326/3857/9214, GetFeatureInfo, and the vector tiles.

QGIS runs in a child process (``tests/api/qgis_client.py``); a layer QGIS cannot load is a
failure, never a skip (``make test`` installs ``python3-qgis`` and ``qgis-providers``)."""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import quote

import numpy as np
import psycopg
import pyproj
import pytest
import shapely
from PIL import Image
from psycopg import sql

from layers import CATALOG, RASTER_LAYERS, VECTOR_LAYERS
from layers.parcels import LAND_USE
from tests.api import test_wms
from tests.api.qgis_client import oapif_uri, run_qgis, wms_uri

# A box of central Huế (lon/lat) dense with demo parcels, for QGIS's bbox requests.
BBOX = (107.578, 16.462, 107.583, 16.466)
PARCEL_KEY = list(VECTOR_LAYERS["parcels"].key)
# The parcel nearest Đại Nội, with a point inside it (lon/lat): the WMS tests' fixture.
parcel = test_wms.parcel


def _public_relation(layer) -> sql.Composable:
    """What the public reads for ``layer``: its public view when it has one, else the table."""
    name = getattr(layer, "public_view", None) or layer.table
    return sql.Identifier(layer.schema, name)


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=120) as r:
        return json.load(r)


def _png(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGBA"))


def _pixel(extent: list[float], size: tuple[int, int], x: float, y: float) -> tuple[int, int]:
    """Row and column of map point (x, y) in an image of ``size`` covering ``extent``."""
    x0, y0, x1, y1 = extent
    col = int((x - x0) / (x1 - x0) * size[0])
    row = int((y1 - y) / (y1 - y0) * size[1])
    return row, col


@pytest.fixture(scope="module")
def database(demo_settings) -> dict:
    """What the demo database holds, read directly: feature counts of every public relation,
    the parcels' extent and the parcels inside BBOX with their geometries."""
    with psycopg.connect(demo_settings.dsn) as conn:
        counts = {lid: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            _public_relation(layer))).fetchone()[0] for lid, layer in VECTOR_LAYERS.items()}
        extent = conn.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                              "(SELECT ST_Extent(geom) AS e FROM land_parcels) s").fetchone()
        in_bbox = {tuple(r[:3]): shapely.from_wkb(bytes(r[3])) for r in conn.execute(
            "SELECT ward_code, map_sheet_no, parcel_no, ST_AsBinary(geom) FROM land_parcels "
            "WHERE ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))", BBOX)}
    return {"counts": counts, "parcels_extent": list(extent), "in_bbox": in_bbox}


@pytest.fixture(scope="module")
def oapif(live_server: str) -> dict:
    """Every collection of ``/collections`` loaded by QGIS's OAPIF provider, and a fresh
    parcels layer read through a bbox request (plain and with ExactIntersect)."""
    ids = [c["id"] for c in _get_json(f"{live_server}/collections")["collections"]]
    ops = [{"op": "oapif", "base": live_server, "collection": cid} for cid in ids]
    ops += [{"op": "oapif", "base": live_server, "collection": "parcels", "bbox": list(BBOX),
             "key": PARCEL_KEY, "exact": exact} for exact in (False, True)]
    results = run_qgis(ops)
    return {"collections": dict(zip(ids, results[:len(ids)], strict=True)), "bbox": results[-2],
            "bbox_exact": results[-1]}


def test_qgis_loads_every_feature_collection(oapif: dict, database: dict) -> None:
    loaded = oapif["collections"]
    assert set(loaded) == set(CATALOG)
    for cid, layer in VECTOR_LAYERS.items():
        got = loaded[cid]
        assert got.get("valid"), (cid, got)
        assert got["count"] == got["provider_count"] == database["counts"][cid], cid
        assert got["crs"] == "EPSG:4326", cid
        assert got["geometry"] == layer.geometry_type, cid
        public = [f.name for f in layer.public_fields]
        # QGIS adds the item id as a field ``id`` when the ids are strings (wards: GSO codes).
        assert [f for f in got["fields"] if f != "id"] == public, cid
        assert not {f.name for f in layer.private_fields} & set(got["fields"]), cid
    assert loaded["parcels"]["extent"] == pytest.approx(database["parcels_extent"], abs=1e-5)
    assert "owner_name" not in loaded["parcels"]["fields"]
    assert not [f for f in loaded["incidents"]["fields"] if f.startswith("reporter")]
    # Coverages (itemType "coverage") have no items: QGIS refuses them as vector layers.
    for rid in RASTER_LAYERS:
        assert loaded[rid].get("valid") is False, rid


def test_qgis_bbox_request_returns_what_the_api_returns(live_server: str, oapif: dict,
                                                        database: dict) -> None:
    api = _get_json(f"{live_server}/collections/parcels/items?limit=10000&bbox="
                    + ",".join(map(str, BBOX)))
    from_api = sorted(tuple(f["properties"][k] for k in PARCEL_KEY) for f in api["features"])
    assert len(from_api) == api["numberMatched"] == len(database["in_bbox"]) > 100
    assert set(from_api) == set(database["in_bbox"])
    for name in ("bbox", "bbox_exact"):
        got = oapif[name]
        assert got.get("valid"), got
        assert sorted(tuple(k) for k in got["keys"]) == from_api, name
    # Each feature sits where the database has it (lon/lat, not swapped).
    for key, (x, y) in zip(oapif["bbox"]["keys"], oapif["bbox"]["points"], strict=True):
        assert database["in_bbox"][tuple(key)].buffer(1e-7).contains(shapely.Point(x, y)), key


@pytest.fixture(scope="module")
def wms_caps(live_server: str) -> dict:
    (caps,) = run_qgis([{"op": "wms_layers", "base": live_server}])
    return caps


def test_qgis_wms_lists_the_public_layers(wms_caps: dict, database: dict) -> None:
    assert wms_caps.get("valid"), wms_caps
    assert set(wms_caps["layers"]) == set(CATALOG)
    assert wms_caps["layer_count"] == len(CATALOG)
    for name, layer in wms_caps["layers"].items():
        assert CATALOG[name].title_vi in layer["title"], name
        assert {"EPSG:4326", "EPSG:3857", "CRS:84", "EPSG:9214"} <= set(layer["crs"]), name
    # The parcels' extent from the capabilities' EPSG:4326 box (latitude first) as QGIS read it.
    assert wms_caps["parcels_extent"] == pytest.approx(database["parcels_extent"], abs=1e-5)


# The map around the parcel: 120 m × 120 m, the parcel a quarter of the way from the left
# and the top (not in the centre, so that a swapped or mirrored axis shows).
SIZE = (240, 240)


def _extent_around(x: float, y: float, half: float) -> list[float]:
    return [x - half / 2, y - 3 * half / 2, x + 3 * half / 2, y + half / 2]


@pytest.fixture(scope="module")
def wms_maps(live_server: str, parcel: dict, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("qgis_wms")
    cases = {}
    for crs in ("EPSG:4326", "EPSG:3857", "EPSG:9214"):
        to = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        x, y = to.transform(parcel["lon"], parcel["lat"])
        half = 0.0003 if crs == "EPSG:4326" else 30.0
        cases[crs] = {"point": (x, y), "extent": _extent_around(x, y, half),
                      "out": str(out / f"{crs.replace(':', '_')}.png")}
    results = run_qgis([{"op": "render", "crs": crs, "extent": c["extent"], "size": list(SIZE),
                         "out": c["out"], "layers": [{"provider": "wms", "uri": wms_uri(
                             live_server, ["parcels"], crs)}]} for crs, c in cases.items()])
    for case, result in zip(cases.values(), results, strict=True):
        case["result"] = result
    return cases


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:3857", "EPSG:9214"])
def test_qgis_wms_map_draws_the_parcel_where_it_is(wms_maps: dict, parcel: dict,
                                                   crs: str) -> None:
    case = wms_maps[crs]
    result = case["result"]
    assert result.get("errors") == [] and result["crs_valid"], result
    assert result["visible_extent"] == pytest.approx(case["extent"], rel=1e-9)
    img = _png(case["out"])
    assert img.shape == (SIZE[1], SIZE[0], 4)
    assert 0.05 < (img[..., 3] > 0).mean(), "QGIS drew nothing"
    row, col = _pixel(case["extent"], SIZE, *case["point"])
    assert (row, col) == (SIZE[1] // 4, SIZE[0] // 4)
    want = np.array([int(LAND_USE[parcel["land_use"]][2][i:i + 2], 16) for i in (1, 3, 5)])
    block = img[row - 1:row + 2, col - 1:col + 2].reshape(-1, 4)
    assert any(p[3] > 0 and np.abs(p[:3].astype(int) - want).max() <= 6 for p in block), \
        (crs, block.tolist(), want.tolist())


@pytest.fixture(scope="module")
def identify(live_server: str, parcel: dict) -> dict:
    d = 0.0005
    common = {"op": "identify", "base": live_server, "layer": "parcels", "crs": "EPSG:4326",
              "extent": [parcel["lon"] - d, parcel["lat"] - d, parcel["lon"] + d,
                         parcel["lat"] + d], "size": [101, 101],
              "point": [parcel["lon"], parcel["lat"]]}
    fmts = ("text", "html", "feature")
    return dict(zip(fmts, run_qgis([{**common, "fmt": fmt} for fmt in fmts]), strict=True))


def test_qgis_wms_identify_text_and_html(identify: dict, parcel: dict) -> None:
    text = identify["text"]
    assert text.get("valid") and len(text["results"]) == 1, text
    assert f"parcel_no = {parcel['parcel_no']}" in text["results"][0]
    assert f"land_use = {parcel['land_use']}" in text["results"][0]
    html = identify["html"]
    assert html.get("valid"), html
    assert f"<td>{parcel['parcel_no']}</td>" in html["results"][0]
    for got in (text, html):
        assert "owner_name" not in json.dumps(got)


@pytest.mark.xfail(strict=True, reason=(
    "QGIS 3.22 finds a JSON GetFeatureInfo answer only under a header spelled exactly "
    "'Content-Type' (qgis/QGIS#50800); uvicorn sends 'content-type', so QGIS parses the "
    "GeoJSON as GML and fails. Behind nginx the header is rewritten and this works."))
def test_qgis_wms_identify_features(identify: dict, parcel: dict) -> None:
    got = identify["feature"]
    assert got.get("valid"), got
    (feature,) = got["results"]
    assert feature["parcel_no"] == parcel["parcel_no"]
    assert feature["land_use"] == parcel["land_use"]
    assert "owner_name" not in feature


@pytest.fixture(scope="module")
def drawn(live_server: str, parcel: dict, tmp_path_factory) -> dict:
    """The parcels around the parcel drawn by QGIS in EPSG:3857 from OAPIF, WMS and the vector
    tiles (QGIS's default style, and /styles/parcels converted by QGIS): images and results."""
    out = tmp_path_factory.mktemp("qgis_drawn")
    to = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    x, y = to.transform(parcel["lon"], parcel["lat"])
    extent = _extent_around(x, y, 60.0)
    tiles = quote(f"{live_server}/collections/parcels/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}",
                  safe="")
    mvt = f"type=xyz&url={tiles}&zmin=14&zmax=18"
    sources = {
        "oapif": {"provider": "OAPIF", "uri": oapif_uri(live_server, "parcels")},
        "wms": {"provider": "wms", "uri": wms_uri(live_server, ["parcels"], "EPSG:3857")},
        "mvt": {"provider": "xyzvectortiles", "uri": mvt},
        "mvt_styled": {"provider": "xyzvectortiles", "name": "parcels", "uri": mvt
                       + "&styleUrl=" + quote(f"{live_server}/styles/parcels", safe="")},
    }
    results = run_qgis([{"op": "render", "crs": "EPSG:3857", "extent": extent,
                         "size": list(SIZE), "out": str(out / f"{name}.png"), "layers": [spec]}
                        for name, spec in sources.items()])
    return {name: {"result": result, "image": _png(out / f"{name}.png")}
            for name, result in zip(sources, results, strict=True)} | {
        "pixel": _pixel(extent, SIZE, x, y)}


def test_qgis_draws_oapif_wms_and_vector_tiles_alike(drawn: dict) -> None:
    """The same parcels drawn by QGIS from three services land on the same pixels."""
    row, col = drawn["pixel"]
    masks = {}
    for name in ("oapif", "wms", "mvt", "mvt_styled"):
        assert drawn[name]["result"].get("errors") == [], (name, drawn[name]["result"])
        img = drawn[name]["image"]
        assert img[row, col, 3] > 0, name
        masks[name] = img[..., 3] > 0
    share = masks["oapif"].mean()
    assert 0.2 < share < 0.95, share  # parcels and the streets between them
    for name in ("wms", "mvt"):
        assert (masks[name] == masks["oapif"]).mean() > 0.9, name
    # /styles/parcels (MapLibre), converted by QGIS, styles the tiles' ``parcels`` layer.
    styles = drawn["mvt_styled"]["result"]["styles"]["parcels"]
    assert any(layer == "parcels" for _, layer in styles), styles


def test_qgis_styles_vector_tiles_by_land_use(drawn: dict, parcel: dict) -> None:
    row, col = drawn["pixel"]
    want = np.array([int(LAND_USE[parcel["land_use"]][2][i:i + 2], 16) for i in (1, 3, 5)])
    # The style's fill-opacity 0.6 over its background colour #f4f1ea.
    want = 0.6 * want + 0.4 * np.array([0xf4, 0xf1, 0xea])
    block = drawn["mvt_styled"]["image"][row - 1:row + 2, col - 1:col + 2].reshape(-1, 4)
    assert any(np.abs(p[:3] - want).max() <= 8 for p in block), (block.tolist(), want)
