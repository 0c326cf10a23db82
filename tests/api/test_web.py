"""Web pages over HTTP (TestClient): the map and embed pages, their headers and parameters,
static files, and the folium export (route and ``huegis map export``)."""

from __future__ import annotations

import json
import re

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli
from layers import VECTOR_LAYERS
from tests.common import CENTRAL_HUE_BBOX

BBOX = ",".join(map(str, CENTRAL_HUE_BBOX))


@pytest.fixture(scope="module")
def client(demo_settings) -> TestClient:
    with TestClient(create_app(demo_settings)) as c:
        yield c


def page_config(html: str) -> dict:
    m = re.search(r'<script id="huegis-config" type="application/json">(.*?)</script>', html,
                  re.S)
    assert m, "the page carries its configuration"
    return json.loads(m.group(1))


def test_map_page(client):
    r = client.get("/map")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == "frame-ancestors 'self'"
    cfg = page_config(r.text)
    assert cfg["style_url"].endswith("/styles/public") and not cfg["embed"]
    assert [x["id"] for x in cfg["legend"]] == ["wards", "parcels", "construction",
                                                "incidents", "education", "health", "tourism"]
    for entry in cfg["legend"]:
        public = {f.name for f in VECTOR_LAYERS[entry["id"]].public_fields}
        assert {f["name"] for f in entry["fields"]} == public  # popups: public fields only
    # MapLibre and the page scripts are served locally (no CDN).
    for src in re.findall(r'(?:src|href)="([^"]+)"', r.text):
        if src.startswith("data:") or src.startswith("#"):
            continue
        assert src.startswith("http://testserver/static/"), src
        assert client.get(src).status_code == 200, src
    js = client.get("/static/vendor/maplibre-gl/maplibre-gl.js")
    assert js.headers["content-type"].startswith("text/javascript") and len(js.content) > 1e5


def test_embed_parameters_and_frame_ancestors(client, demo_settings):
    r = client.get("/embed?layers=tourism,health&center=107.58,16.47&zoom=15&lang=en")
    assert r.status_code == 200
    assert r.headers["content-security-policy"] == "frame-ancestors *"  # permissive default
    assert "x-frame-options" not in r.headers
    cfg = page_config(r.text)
    assert cfg["embed"] and cfg["layers"] == ["tourism", "health"]
    assert cfg["center"] == [107.58, 16.47] and cfg["zoom"] == 15 and cfg["lang"] == "en"
    assert '<html lang="en">' in r.text
    s = demo_settings.model_copy(update={"frame_ancestors": "'self' https://portal.example"})
    with TestClient(create_app(s)) as c:
        assert c.get("/embed").headers["content-security-policy"] == \
            "frame-ancestors 'self' https://portal.example"


@pytest.mark.parametrize("query", ["layers=tourism,owners", "center=16.47,107.58",
                                   "center=abc", "zoom=40", "lang=fr"])
def test_bad_embed_parameters_are_400(client, query):
    r = client.get(f"/embed?{query}")
    assert r.status_code == 400 and r.json()["code"] == "InvalidParameterValue"


@pytest.mark.parametrize("path", ["/static/../api/web.py", "/static/%2e%2e/api/web.py",
                                  "/static/vendor/maplibre-gl/../package.json",
                                  "/static/nope.js"])
def test_static_files_stay_in_their_folders(client, path):
    assert client.get(path).status_code == 404


def _count(dsn: str, layer_id: str, bbox: tuple) -> int:
    layer = VECTOR_LAYERS[layer_id]
    with psycopg.connect(dsn) as conn:
        return conn.execute(f'SELECT count(*) FROM "{layer.table}" '
                            "WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)",
                            bbox).fetchone()[0]


def test_folium_route_draws_the_layer_with_public_fields(client, demo_settings):
    r = client.get(f"/collections/parcels/folium?bbox={BBOX}&limit=20000")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "leaflet" in html.lower() and "huegis-legend" in html
    n = _count(demo_settings.dsn, "parcels", CENTRAL_HUE_BBOX)
    assert 0 < n <= 20000
    assert html.count('"type": "Feature"') == n
    assert "owner_name" not in html  # anonymous: public fields only
    assert "Thửa đất" in html  # legend title from the catalog
    for value, colour in VECTOR_LAYERS["parcels"].style.classes[:3]:
        assert colour in html and value in html
    assert client.get("/collections/parcels/folium?bbox=1,2,3").status_code == 400
    assert client.get("/collections/nope/folium").status_code == 404
    assert client.get("/collections/flood-depth/folium").status_code == 404


def test_pages_carry_the_catalog_titles_in_both_languages(client):
    cfg = page_config(client.get("/map").text)
    parcels = {f["name"]: f for f in next(x for x in cfg["legend"]
                                           if x["id"] == "parcels")["fields"]}
    assert parcels["land_use"]["title"] == "Land-use code"
    assert parcels["land_use"]["title_vi"] == "Mục đích sử dụng đất"
    assert parcels["land_use"]["choices"]["ODT"] == ["Urban residential land",
                                                     "Đất ở tại đô thị"]
    assert parcels["ward_code"]["title_vi"] == "Mã phường/xã"
    for layer_id, entry in ((x["id"], x) for x in cfg["legend"]):
        layer = VECTOR_LAYERS[layer_id]
        for f in entry["fields"]:
            assert (f["title"], f["title_vi"]) == (layer.field(f["name"]).title,
                                                   layer.field(f["name"]).title_vi)
        for item in entry["items"]:  # legend classes: what each value means
            if item["value"] is not None:
                field = layer.field(layer.style.classify)
                assert item["label_vi"] == field.choice_title(item["value"], "vi")
    page = client.get("/map").text
    for layer in VECTOR_LAYERS.values():  # no private field, not even its title
        for f in layer.private_fields:
            assert f.name not in page and f.title not in page and f.title_vi not in page
    # The inspector's details table titles every field the ward-scoped API returns.
    fields = {f["name"]: f for f in page_config(client.get("/inspector").text)["fields"]}
    assert fields["status"]["choices"]["in_progress"] == ["In progress", "Đang xử lý"]
    assert fields["reporter_phone"]["title_vi"] == "Số điện thoại người phản ánh"
    # The planner's layer choice is titled in the page's language.
    assert ">Thửa đất</option>" in client.get("/planner").text
    assert ">Land parcels</option>" in client.get("/planner?lang=en").text


def test_ogc_pages_title_the_fields_in_both_languages(client):
    q = client.get("/collections/parcels/queryables").json()["properties"]
    assert (q["land_use"]["title"], q["land_use"]["x-title-vi"]) == ("Land-use code",
                                                                     "Mục đích sử dụng đất")
    assert "owner_name" not in q
    collection = client.get("/collections/parcels?f=html").text
    assert "<td lang=\"vi\">Mục đích sử dụng đất</td>" in collection
    items = client.get("/collections/parcels/items?f=html&limit=2").text
    assert '<span lang="vi">Số thửa</span><br><small>Parcel number</small>' in items
    fid = client.get("/collections/incidents/items?limit=1").json()["features"][0]["id"]
    item = client.get(f"/collections/incidents/items/{fid}?f=html").text
    assert '<span lang="vi">Mã phản ánh</span> · Reference' in item
    for page in (collection, items, item):
        assert "Chủ sử dụng" not in page and "người phản ánh" not in page


def _folium_aliases(html: str) -> list[str]:
    m = re.search(r"let aliases = (\[.*?\]);", html)
    assert m, "the popups name their fields"
    return json.loads(m.group(1))


def test_folium_titles_follow_the_language(client):
    vi = client.get(f"/collections/parcels/folium?bbox={BBOX}&limit=50")
    en = client.get(f"/collections/parcels/folium?bbox={BBOX}&limit=50&lang=en")
    assert vi.status_code == en.status_code == 200
    parcels = VECTOR_LAYERS["parcels"]
    assert "Mục đích sử dụng đất" in _folium_aliases(vi.text)  # Vietnamese by default
    assert "Land-use code" in _folium_aliases(en.text)
    assert set(_folium_aliases(vi.text)) <= {f.title_vi for f in parcels.public_fields}
    assert set(_folium_aliases(en.text)) <= {f.title for f in parcels.public_fields}
    assert "ODT – Đất ở tại đô thị" in vi.text and "<b>Thửa đất</b>" in vi.text
    assert "ODT – Urban residential land" in en.text and "<b>Land parcels</b>" in en.text
    for html in (vi.text, en.text):
        assert "owner_name" not in html and "Chủ sử dụng" not in html
    bad = client.get("/collections/parcels/folium?lang=fr")
    assert bad.status_code == 400 and bad.json()["code"] == "InvalidParameterValue"


def test_map_export_cli(demo_settings, tmp_path):
    out = tmp_path / "tourism.html"
    env = {"HUEGIS_DATABASE_URL": demo_settings.dsn, "COLUMNS": "200"}
    res = CliRunner().invoke(cli, ["map", "export", "--layer", "incidents", "--bbox", BBOX,
                                   "--out", str(out)], env=env)
    assert res.exit_code == 0, res.output
    html = out.read_text()
    n = _count(demo_settings.dsn, "incidents", CENTRAL_HUE_BBOX)
    assert html.count('"type": "Feature"') == n > 0
    assert "reporter" not in html
    assert "Mã phản ánh" in _folium_aliases(html)  # Vietnamese by default
    res = CliRunner().invoke(cli, ["map", "export", "--layer", "incidents", "--bbox", BBOX,
                                   "--lang", "en", "--out", str(out)], env=env)
    assert res.exit_code == 0 and "Reference" in _folium_aliases(out.read_text())
    res = CliRunner().invoke(cli, ["map", "export", "--layer", "nope", "--out", str(out)],
                             env=env)
    assert res.exit_code == 2 and "LayerNotFound" in res.output
    res = CliRunner().invoke(cli, ["map", "export", "--layer", "tourism", "--lang", "fr",
                                   "--out", str(out)], env=env)
    assert res.exit_code == 2 and "lang" in res.output
