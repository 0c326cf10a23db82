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
    res = CliRunner().invoke(cli, ["map", "export", "--layer", "nope", "--out", str(out)],
                             env=env)
    assert res.exit_code == 2 and "LayerNotFound" in res.output
