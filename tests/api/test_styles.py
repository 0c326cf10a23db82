"""MapLibre style documents from the catalog, validated by the style-spec's own validator."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from gis.settings import PROJECT_ROOT
from layers import VECTOR_LAYERS

VALIDATOR = (PROJECT_ROOT / "web" / "node_modules" / "@maplibre" / "maplibre-gl-style-spec"
             / "dist" / "gl-style-validate.mjs")


@pytest.fixture(scope="module")
def client(settings) -> TestClient:
    with TestClient(create_app(settings)) as c:
        yield c


def validate(doc: dict, tmp_path: Path) -> list[dict]:
    """Errors of the MapLibre style-spec validator (run by node) for ``doc``."""
    node = shutil.which("node")
    if node is None or not VALIDATOR.exists():
        pytest.fail("node and web/node_modules are needed: run `make web`")
    path = tmp_path / "style.json"
    path.write_text(json.dumps(doc))
    out = subprocess.run([node, str(VALIDATOR), "--json", str(path)], capture_output=True,
                         text=True, timeout=60)
    return json.loads(out.stdout or "[]") if out.returncode else []


def test_the_validator_catches_a_broken_style(tmp_path):
    errors = validate({"version": 8, "sources": {},
                       "layers": [{"id": "x", "type": "fill", "source": "nope"}]}, tmp_path)
    assert errors and "nope" in json.dumps(errors)


def test_styles_list_names_every_layer_and_public(client):
    body = client.get("/styles").json()
    ids = [s["id"] for s in body["styles"]]
    assert ids == ["public", *VECTOR_LAYERS]
    link = body["styles"][1]["links"][0]
    assert link["href"].endswith("/styles/wards") and link["rel"] == "stylesheet"


@pytest.mark.parametrize("style_id", ["public", *VECTOR_LAYERS])
def test_every_style_is_valid(client, style_id, tmp_path):
    r = client.get(f"/styles/{style_id}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.mapbox.style+json")
    doc = r.json()
    assert validate(doc, tmp_path) == []
    # Each catalog layer reads its own OGC API tiles; source-layer is the collection id.
    for layer in doc["layers"]:
        if "source" in layer:
            src = doc["sources"][layer["source"]]
            assert src["tiles"][0].endswith(
                f"/collections/{layer['source']}/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}")
            assert layer["source-layer"] == layer["source"]


def _gets(expr) -> set[str]:
    """Field names read by ``["get", name]`` anywhere in a style expression."""
    if isinstance(expr, list):
        found = {expr[1]} if len(expr) == 2 and expr[0] == "get" else set()
        for part in expr:
            found |= _gets(part)
        return found
    if isinstance(expr, dict):
        return set().union(*(_gets(v) for v in expr.values())) if expr else set()
    return set()


def test_public_style_uses_catalog_colours_labels_and_public_fields_only(client):
    doc = client.get("/styles/public").json()
    by_id = {x["id"]: x for x in doc["layers"]}
    fill = by_id["parcels-fill"]["paint"]["fill-color"]
    assert fill[:2] == ["match", ["get", "land_use"]]
    labels = fill[2:-1:2]
    assert all(isinstance(x, list) and len(x) == 1 for x in labels)  # QGIS reads these
    pairs = {x[0]: c for x, c in zip(labels, fill[3:-1:2], strict=True)}
    assert pairs == dict(VECTOR_LAYERS["parcels"].style.classes)
    assert fill[-1] == VECTOR_LAYERS["parcels"].style.fill
    assert by_id["wards-label"]["layout"]["text-field"] == ["get", "short_name"]
    # Sources start where the tile service has generalized tiles (incident clusters at z6).
    assert doc["sources"]["incidents"]["minzoom"] == by_id["incidents-circle"]["minzoom"] == 6
    assert doc["sources"]["parcels"]["minzoom"] == 11
    # Parcels' outlines start where the PNG maps' do (before, they would hide the colours).
    from gis.render.style import outline_zoom

    assert by_id["parcels-line"]["minzoom"] == outline_zoom(VECTOR_LAYERS["parcels"]) == 16
    radius = by_id["tourism-circle"]["paint"]["circle-radius"]
    assert radius[-1] == VECTOR_LAYERS["tourism"].style.radius
    for layer in doc["layers"]:
        cat = VECTOR_LAYERS.get(layer.get("source", ""))
        if cat is None:
            continue
        used = _gets(layer.get("paint", {})) | _gets(layer.get("layout", {}))
        public = {f.name for f in cat.public_fields} | {"count"}  # clusters' count
        assert used <= public, (layer["id"], used - public)
    # Ward outlines and labels are drawn above the parcels.
    order = [x["id"] for x in doc["layers"]]
    assert order.index("parcels-fill") < order.index("wards-line") < order.index("wards-label")
    legend = {x["id"]: x for x in doc["metadata"]["huegis:legend"]}
    assert legend["parcels"]["title_vi"] == "Thửa đất"
    assert "owner_name" not in {f["name"] for f in legend["parcels"]["fields"]}


def test_unknown_style_is_404(client):
    r = client.get("/styles/nope")
    assert r.status_code == 404 and r.json()["code"] == "NotFound"


def test_basemap_setting_adds_a_raster_base(settings, tmp_path):
    s = settings.model_copy(update={"basemap_url": "https://tiles.example/{z}/{x}/{y}.png",
                                    "basemap_attribution": "© Example"})
    with TestClient(create_app(s)) as c:
        doc = c.get("/styles/public").json()
    assert doc["sources"]["basemap"]["tiles"] == ["https://tiles.example/{z}/{x}/{y}.png"]
    assert [x["id"] for x in doc["layers"]][:2] == ["background", "basemap"]
    assert validate(doc, tmp_path) == []


def _fields(buf: bytes):
    """(tag, value) pairs of one protobuf message (varints and length-delimited only)."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        if key & 7 == 0:
            value, i = _varint(buf, i)
        else:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        yield key >> 3, value


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, i


def test_glyphs_cover_vietnamese(client):
    doc = client.get("/styles/public").json()
    font = doc["layers"][-1]["layout"]["text-font"][0]
    assert doc["glyphs"].endswith("/fonts/{fontstack}/{range}.pbf")
    r = client.get(f"/fonts/{font}/7680-7935.pbf")  # Latin Extended Additional: ế, ộ, ữ …
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"
    (tag, stack), = list(_fields(r.content))
    assert tag == 1
    parts = list(_fields(stack))
    assert dict(parts[:2]) == {1: font.encode(), 2: b"7680-7935"}
    glyphs = {}
    for _tag, g in parts[2:]:
        fields = dict(_fields(g))
        glyphs[fields[1]] = fields
    assert ord("ế") in glyphs and ord("ữ") in glyphs
    e = glyphs[ord("ế")]
    assert len(e[2]) == (e[3] + 6) * (e[4] + 6)  # SDF bitmap with its 3 px border
    assert max(e[2]) > 191 > min(e[2])  # inside and outside of the outline
    assert client.get(f"/fonts/{font}/0-100.pbf").status_code == 400
    assert client.get(f"/fonts/{font}/1-256.pbf").status_code == 404  # not a range
    assert client.get("/fonts/Comic Sans/0-255.pbf").status_code == 404
