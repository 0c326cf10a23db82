"""The public map and the embed in a real browser (Debian Chromium), on the live demo server."""

from __future__ import annotations

import functools
import http.server
import io
import json
import threading
import urllib.request

import psycopg
import pytest
from PIL import Image
from shapely.geometry import shape

from gis.tiles import mvt
from layers import VECTOR_LAYERS
from layers.parcels import LAND_USE

BACKGROUND = (0xF4, 0xF1, 0xEA)
CENTRAL = "107.565,16.455,107.61,16.48"


def wait_map_idle(target, timeout: float = 30_000) -> None:
    """Until the page's MapLibre map has its style and every visible tile drawn."""
    target.wait_for_function(
        "window.hueMap && window.hueMap.loaded() && window.hueMap.areTilesLoaded()",
        timeout=timeout)


def get_json(url: str) -> dict:
    req = urllib.request.Request(url, headers={"Accept": "application/geo+json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


@functools.cache
def biggest_feature(base: str, layer: str) -> dict:
    """The largest (by area, or the first point) feature of a layer in central Huế."""
    fc = get_json(f"{base}/collections/{layer}/items?bbox={CENTRAL}&limit=300")
    assert fc["features"], f"no {layer} in central Huế in the demo"
    return max(fc["features"], key=lambda f: shape(f["geometry"]).area)


def inside_point(feature: dict) -> tuple[float, float]:
    p = shape(feature["geometry"]).representative_point()
    return p.x, p.y


def map_pixel(page, lon: float, lat: float) -> tuple[float, float]:
    """Page coordinates of a lon/lat on the map."""
    box = page.locator("#map canvas").bounding_box()
    xy = page.evaluate("([x, y]) => { const p = hueMap.project([x, y]); return [p.x, p.y]; }",
                       [lon, lat])
    return box["x"] + xy[0], box["y"] + xy[1]


def expected_parcel_colour(land_use: str) -> tuple[int, ...]:
    """The catalog colour of a land-use class at the style's opacity over the background
    (and the faint white ward fill under it), computed independently of the browser."""
    hexcol = LAND_USE[land_use][2]
    c = [int(hexcol[i:i + 2], 16) for i in (1, 3, 5)]
    under = [0.05 * 255 + 0.95 * b for b in BACKGROUND]
    a = VECTOR_LAYERS["parcels"].style.fill_opacity
    return tuple(round(a * ci + (1 - a) * ui) for ci, ui in zip(c, under, strict=True))


def test_public_map_draws_parcel_tiles_and_popups_show_public_fields(open_page, live_server):
    parcel = biggest_feature(live_server, "parcels")
    lon, lat = inside_point(parcel)
    page, console = open_page(f"{live_server}/map#map=16/{lat}/{lon}&layers=wards,parcels")
    wait_map_idle(page)
    # Pixels, not the DOM: the canvas shows the parcel in its land-use colour.
    shot = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    x, y = map_pixel(page, lon, lat)
    got = shot.getpixel((round(x), round(y)))
    want = expected_parcel_colour(parcel["properties"]["land_use"])
    assert max(abs(g - w) for g, w in zip(got, want, strict=True)) <= 20, (got, want)
    canvas = page.locator("#map canvas").bounding_box()
    crop = shot.crop((int(canvas["x"]), int(canvas["y"]),
                      int(canvas["x"] + canvas["width"]), int(canvas["y"] + canvas["height"])))
    colours = crop.getcolors(maxcolors=1 << 20)
    drawn = sum(n for n, c in colours if max(abs(a - b) for a, b in zip(c, BACKGROUND,
                                                                           strict=True)) > 12)
    assert drawn > 0.2 * canvas["width"] * canvas["height"]  # parcels cover central Huế

    # A click opens a popup with the parcel's public fields, never its owner. At z16 the
    # tile carries the land use alone: the rest is read by id (public fields only).
    assert mvt.tile_fields(VECTOR_LAYERS["parcels"], 16) == ["land_use"]
    page.mouse.click(x, y)
    popup = page.locator(".maplibregl-popup .popup:not([data-loading])")
    popup.wait_for(timeout=5_000)
    assert popup.get_attribute("data-collection") == "parcels"
    text = popup.inner_text()
    assert parcel["properties"]["parcel_no"] in text
    titles = set(popup.locator("th").all_inner_texts())
    public = {f.title for f in VECTOR_LAYERS["parcels"].public_fields}
    assert titles and titles <= public
    assert "owner name" not in text.lower()
    assert console.errors == []


def test_popups_speak_the_interface_language_and_never_show_private_fields(
        open_page, live_server, demo_settings):
    parcel = biggest_feature(live_server, "parcels")
    lon, lat = inside_point(parcel)
    layer = VECTOR_LAYERS["parcels"]
    land_use = layer.field("land_use")
    with psycopg.connect(demo_settings.dsn) as conn:
        owner, = conn.execute("SELECT owner_name FROM land_parcels WHERE id = %s",
                              (parcel["id"],)).fetchone()
    assert owner  # the demo parcel has an owner: the popup must not show it

    def popup_rows(page) -> dict[str, str]:
        rows = page.locator(".maplibregl-popup .popup tr")
        return {r.locator("th").inner_text(): r.locator("td").inner_text()
                for r in rows.all()}

    # A Vietnamese browser: the interface, and so the popup, in Vietnamese.
    page, console = open_page(f"{live_server}/map#map=17/{lat}/{lon}&layers=parcels",
                              locale="vi-VN")
    wait_map_idle(page)
    page.mouse.click(*map_pixel(page, lon, lat))
    # z17 tiles carry the land use and the number: the other fields come by id.
    page.locator(".maplibregl-popup .popup[lang=vi]:not([data-loading])").wait_for(
        timeout=5_000)
    rows = popup_rows(page)
    assert page.locator(".maplibregl-popup h3").inner_text() == "Thửa đất"
    assert set(rows) <= {f.title_vi for f in layer.public_fields}
    assert rows["Số thửa"] == parcel["properties"]["parcel_no"]
    assert rows["Mục đích sử dụng đất"] == land_use.choice_title(
        parcel["properties"]["land_use"], "vi")
    private = {f.title_vi for f in layer.private_fields} | {f.title for f in
                                                             layer.private_fields}
    text = page.locator(".maplibregl-popup").inner_text()
    assert not any(t in text for t in private) and owner not in text

    # The switch turns the open popup, and the next ones, into English.
    page.click("#lang-switch")
    page.locator(".maplibregl-popup .popup[lang=en]").wait_for(timeout=5_000)
    rows = popup_rows(page)
    assert page.locator(".maplibregl-popup h3").inner_text() == "Land parcels"
    assert set(rows) <= {f.title for f in layer.public_fields}
    assert rows["Land-use code"] == land_use.choice_title(parcel["properties"]["land_use"],
                                                          "en")
    text = page.locator(".maplibregl-popup").inner_text()
    assert not any(t in text for t in private) and owner not in text
    assert console.errors == []

    # An English browser starts in English.
    page, console = open_page(f"{live_server}/map#map=17/{lat}/{lon}&layers=parcels",
                              locale="en-GB")
    wait_map_idle(page)
    page.mouse.click(*map_pixel(page, lon, lat))
    page.locator(".maplibregl-popup .popup[lang=en]").wait_for(timeout=5_000)
    assert "Parcel number" in popup_rows(page)
    assert console.errors == []


def test_incident_popup_never_shows_reporters(open_page, live_server):
    incident = biggest_feature(live_server, "incidents")
    lon, lat = inside_point(incident)
    page, console = open_page(f"{live_server}/map#map=17/{lat}/{lon}&layers=incidents")
    wait_map_idle(page)
    page.mouse.click(*map_pixel(page, lon, lat))
    popup = page.locator(".maplibregl-popup .popup")
    popup.wait_for(timeout=5_000)
    assert popup.get_attribute("data-collection") == "incidents"
    assert incident["properties"]["ref"] in popup.inner_text()
    titles = set(popup.locator("th").all_inner_texts())
    assert titles <= {f.title for f in VECTOR_LAYERS["incidents"].public_fields}
    assert "reporter" not in popup.inner_text().lower()
    assert console.errors == []


def test_url_hash_language_and_keyboard(open_page, live_server):
    page, console = open_page(
        f"{live_server}/map#map=14.5/16.46/107.59&layers=wards,tourism", locale="vi-VN")
    wait_map_idle(page)
    assert page.evaluate("hueMap.getZoom()") == pytest.approx(14.5)
    assert page.evaluate("hueMap.getCenter().lng") == pytest.approx(107.59, abs=1e-4)
    assert page.locator("h1").inner_text() == "Bản đồ Huế"  # Vietnamese browser
    assert page.locator("#layer-tourism").is_checked()
    assert not page.locator("#layer-parcels").is_checked()
    assert page.locator("#legend").inner_text().count("Điểm du lịch") == 1

    # Every control is reached with Tab and has a name.
    reached = {}
    for _ in range(30):
        page.keyboard.press("Tab")
        info = page.evaluate("""() => { const el = document.activeElement;
            const lab = el.labels && el.labels.length ? el.labels[0].innerText : '';
            return [el.id, (el.getAttribute('aria-label') || lab || el.innerText || '').trim()];
        }""")
        reached[info[0]] = info[1]
    for control in ("search", "panel-toggle", "lang-switch", "layer-parcels", "embed-copy"):
        assert reached.get(control), (control, reached)
    # Space on the focused checkbox switches the layer, and the link keeps it.
    page.focus("#layer-parcels")
    page.keyboard.press("Space")
    page.wait_for_function("location.hash.includes('parcels')")
    assert page.evaluate("hueMap.getLayoutProperty('parcels-fill', 'visibility')") == "visible"
    # The language switch changes the interface and is remembered.
    page.click("#lang-switch")
    assert page.locator("h1").inner_text() == "Huế map"
    assert "Tourism points of interest" in page.locator("#legend").inner_text()
    snippet = page.locator("#embed-snippet").input_value()
    assert snippet.startswith("<iframe") and "/embed?layers=" in snippet and "lang=en" in snippet
    assert console.errors == []


def test_usable_on_a_phone(open_page, live_server):
    page, console = open_page(f"{live_server}/map", viewport={"width": 375, "height": 700},
                              is_mobile=True, has_touch=True)
    wait_map_idle(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    canvas = page.locator("#map canvas").bounding_box()
    assert canvas["width"] >= 370 and canvas["height"] >= 400
    assert page.locator("#panel").is_hidden()  # the panel opens on demand
    page.click("#panel-toggle")
    assert page.locator("#layer-wards").is_visible()
    assert page.locator("#panel-toggle").get_attribute("aria-expanded") == "true"
    assert console.errors == []


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_embed_works_from_another_origin(open_page, live_server, tmp_path):
    lon, lat = 107.5775, 16.469
    src = f"{live_server}/embed?layers=tourism,health&center={lon},{lat}&zoom=15&lang=en"
    (tmp_path / "index.html").write_text(
        f'<!doctype html><title>Partner site</title><link rel="icon" href="data:,">'
        f'<h1>Partner</h1>'
        f'<iframe id="m" src="{src}" width="600" height="400" title="Huế map"></iframe>')
    handler = functools.partial(_Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # localhost vs 127.0.0.1: another origin for the browser.
        page, console = open_page(f"http://localhost:{server.server_port}/")
        frame = page.frame_locator("#m")
        frame.locator("#map canvas").wait_for(timeout=20_000)
        inner = next(f for f in page.frames if "/embed" in f.url)
        wait_map_idle(inner)
        assert inner.evaluate("hueMap.getZoom()") == pytest.approx(15)
        assert inner.evaluate("hueMap.getLayoutProperty('tourism-circle', 'visibility')") \
            == "visible"
        assert inner.evaluate("hueMap.getLayoutProperty('parcels-fill', 'visibility')") \
            == "none"
        assert "Health facilities" in inner.locator("#legend").inner_text()
        shot = Image.open(io.BytesIO(page.locator("#m").screenshot())).convert("RGB")
        colours = shot.getcolors(maxcolors=1 << 20)
        assert len(colours) > 20  # the frame draws the map, not an error page
        assert console.errors == []
    finally:
        server.shutdown()


def test_search_ignores_diacritics_and_moves_the_map(open_page, live_server):
    page, console = open_page(f"{live_server}/map")
    wait_map_idle(page)
    expected = get_json(f"{live_server}/search?q=thuan%20hoa&limit=8")["features"][0]
    page.fill("#search", "thuan hoa")  # no diacritics
    first = page.locator("#search-results button").first
    first.wait_for(timeout=10_000)
    assert expected["properties"]["name"] in first.inner_text()
    assert "Thuận Hóa" in first.inner_text()
    page.keyboard.press("ArrowDown")  # the results are reachable from the keyboard
    page.keyboard.press("Enter")
    lon, lat = expected["geometry"]["coordinates"]
    page.wait_for_function(
        f"Math.abs(hueMap.getCenter().lng - {lon}) < 1e-3 && "
        f"Math.abs(hueMap.getCenter().lat - {lat}) < 1e-3", timeout=10_000)
    assert page.locator("#search-results").is_hidden()
    assert console.errors == []
