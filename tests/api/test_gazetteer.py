"""Place search: diacritics and case do not matter, wards, landmarks, streets and points of
interest are found, bad queries are 400."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator

import psycopg
import pyproj
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point

from api.app import create_app
from gis.settings import Settings
from tests.common import DAI_NOI_LONLAT

TO_M = pyproj.Transformer.from_crs(4326, 9214, always_xy=True).transform


def _fold(text: str) -> str:
    """Independent folding: NFD without combining marks, đ → d, lower case."""
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFD", text)
                   if not unicodedata.combining(c)).lower()


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def demo(demo_settings: Settings) -> Iterator[TestClient]:
    """The demo as ``huegis load demo`` leaves it (which refreshes the streets)."""
    with TestClient(create_app(demo_settings)) as c:
        yield c


def _names(r) -> list[str]:
    assert r.status_code == 200, r.text
    return [f["properties"]["name"] for f in r.json()["features"]]


@pytest.mark.parametrize("q", ["Dai Noi", "dai noi", "ĐẠI NỘI", "Đại Nội", "dại nôi"])
def test_dai_noi_whatever_the_accents(client: TestClient, q: str) -> None:
    r = client.get("/search", params={"q": q})
    first = r.json()["features"][0]
    assert first["properties"]["name"] == "Đại Nội"
    x, y = TO_M(*first["geometry"]["coordinates"])
    assert Point(x, y).distance(Point(TO_M(*DAI_NOI_LONLAT))) < 100


def test_hue_finds_huế_and_wards_by_bare_name(client: TestClient, database_url: str) -> None:
    r = client.get("/search", params={"q": "hue", "limit": 50})
    names = _names(r)
    props = [f["properties"] for f in r.json()["features"]]
    assert props and all("hue" in _fold(p["name"] + " " + (p["alt_names"] or ""))
                         for p in props[:10])
    assert any("Huế" in n for n in names)
    with psycopg.connect(database_url) as conn:
        ward = conn.execute("SELECT name FROM admin_units WHERE level = 'ward' "
                            "ORDER BY gso_code LIMIT 1").fetchone()[0]
    bare = _fold(ward.split(" ", 1)[1])  # "Phường Phú Xuân" → "phu xuan"
    r = client.get("/search", params={"q": bare, "kind": "ward"})
    assert _names(r)[0] == ward
    assert r.json()["features"][0]["properties"]["kind"] == "ward"


def test_streets_after_refresh(demo: TestClient) -> None:
    r = demo.get("/search", params={"q": "le loi", "kind": "street"})
    names = _names(r)
    assert names and names[0] == "Lê Lợi"
    assert {f["properties"]["ward_code"] for f in r.json()["features"]} != {None}


def test_bad_queries(client: TestClient) -> None:
    for params in ({"q": ""}, {"q": "   "}, {"q": "x" * 201}, {"q": "hue", "limit": 0},
                   {"q": "hue", "kind": "planet"}, {}, {"q": "a\x00b"}):
        r = client.get("/search", params=params)
        assert r.status_code == 400, (params, r.text)
    assert _names(client.get("/search", params={"q": "qqqzzzxxx"})) == []
    assert client.get("/search", params={"q": "100%_'\""}).status_code == 200
