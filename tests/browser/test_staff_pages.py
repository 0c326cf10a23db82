"""The inspector map (live updates between two pages), the dashboard and the planner page in a
real browser, on the live demo server; every figure checked against the database."""

from __future__ import annotations

import json
import urllib.request

import psycopg
import pyogrio
import pytest
import shapely

from gis.auth.accounts import create_user
from tests.common import DAI_NOI_LONLAT

PASSWORD = "browser-test-pass"


def wait_map_idle(target, name: str = "hueMap", timeout: float = 30_000) -> None:
    target.wait_for_function(
        f"window.{name} && window.{name}.loaded() && window.{name}.areTilesLoaded()",
        timeout=timeout)


def post_json(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


@pytest.fixture()
def fresh_report(live_server, demo_settings):
    """A new report near Đại Nội and an inspector of its ward, both removed afterwards (the
    demo database is shared)."""
    lon, lat = DAI_NOI_LONLAT
    report = post_json(f"{live_server}/incidents",
                       {"category": "waste", "description": "browser test", "lon": lon,
                        "lat": lat})
    username = f"insp-{report['ref'].lower()}"
    with psycopg.connect(demo_settings.dsn) as conn:
        create_user(conn, username, PASSWORD, "inspector", [report["ward_code"]])
        conn.commit()
    try:
        yield report, username
    finally:
        with psycopg.connect(demo_settings.dsn) as conn:
            conn.execute("DELETE FROM incidents WHERE ref = %s", (report["ref"],))
            conn.execute("DELETE FROM users WHERE username = %s", (username,))
            conn.commit()


def sign_in(page, username: str) -> None:
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#signin button[type=submit]")


def test_inspector_action_appears_live_on_a_second_page(open_page, live_server, fresh_report,
                                                        demo_settings):
    report, username = fresh_report
    ref = report["ref"]
    watcher, watcher_console = open_page(f"{live_server}/inspector")
    sign_in(watcher, username)
    row = watcher.locator(f'#reports li[data-ref="{ref}"] .status')
    row.wait_for(timeout=20_000)
    assert row.get_attribute("data-status") == "received"
    assert row.inner_text() == "Received"  # the catalog's title (an English browser)
    watcher.wait_for_selector("#live.on", timeout=10_000)  # listening to the feed
    watcher.evaluate("window.__notReloaded = true")

    actor, actor_console = open_page(f"{live_server}/inspector")
    sign_in(actor, username)
    actor.click(f'#reports li[data-ref="{ref}"] button')
    actor.wait_for_selector("#detail #act", timeout=10_000)
    assert "browser test" in actor.locator("#detail").inner_text()
    # Field titles from the catalog, not column names.
    assert actor.locator('#detail tr[data-field="description"] th').inner_text() == "Description"
    assert actor.locator('#detail tr[data-field="sla_due_at"] th').inner_text() == "SLA due"
    assert actor.locator("#detail .history li").count() >= 1
    actor.select_option("#a-status", "assigned")
    actor.fill("#a-note", "on my way")
    actor.click("#do-status")
    actor.wait_for_function(
        "document.querySelector('#detail .history').innerText.includes('on my way')",
        timeout=10_000)
    assert "→ Assigned" in actor.locator("#detail .history").inner_text()

    # The second page shows the change without reloading.
    watcher.wait_for_function(
        f"document.querySelector('#reports li[data-ref=\"{ref}\"] .status').dataset.status"
        " === 'assigned'", timeout=15_000)
    assert watcher.evaluate("window.__notReloaded") is True
    # A note alone: added to the history, the status stays.
    actor.wait_for_selector("#detail #do-note", timeout=10_000)
    actor.fill("#a-note", "called the reporter")
    actor.click("#do-note")
    actor.wait_for_function(
        "document.querySelector('#detail .history').innerText.includes('called the reporter')",
        timeout=10_000)
    with psycopg.connect(demo_settings.dsn) as conn:
        status, = conn.execute("SELECT status FROM incidents WHERE ref = %s", (ref,)).fetchone()
        kinds = [k for k, in conn.execute(
            "SELECT e.kind FROM incident_events e JOIN incidents i ON i.id = e.incident_id "
            "WHERE i.ref = %s ORDER BY e.id", (ref,))]
    assert status == "assigned" and kinds[-1] == "note"
    # Only the inspector's ward is listed, and the map clusters its reports.
    wait_map_idle(watcher)
    assert watcher.evaluate("hueMap.getSource('reports') !== undefined")
    assert watcher_console.errors == [] and actor_console.errors == []


def test_inspector_page_needs_a_sign_in(open_page, live_server):
    page, console = open_page(f"{live_server}/inspector")
    page.wait_for_selector("#signin:not([hidden])")
    assert page.locator("#work").is_hidden()
    page.fill("#username", "nobody")
    page.fill("#password", "wrong-password")
    page.click("#signin button[type=submit]")
    page.wait_for_function("document.querySelector('#signin-error').innerText.length > 0")
    assert page.locator("#work").is_hidden()
    # The only error is the refused sign-in itself (a 401 the page reports to the user).
    assert all("401" in e for e in console.errors)


def test_dashboard_figures_match_the_database(open_page, live_server, demo_settings):
    page, console = open_page(f"{live_server}/dashboard", viewport={"width": 1600,
                                                                    "height": 900})
    hexbins: list[int] = []
    page.on("response", lambda r: "/stats/incidents/hexbins" in r.url
            and hexbins.append(r.status))
    page.wait_for_function("window.hueDashboard && hueDashboard.refreshed > 0",
                           timeout=40_000)
    with psycopg.connect(demo_settings.dsn) as conn:
        n, processed = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status IN "
            "('resolved', 'rejected', 'duplicate')) FROM incidents").fetchone()
    assert page.locator("#k-count").inner_text() == f"{n:,}"
    assert page.locator("#k-processed_share").inner_text() == f"{processed / n * 100:.1f} %"
    assert page.locator("#wards tr").count() > 2
    assert page.locator("#trend polyline").count() == 2
    wait_map_idle(page, "hueWardMap")
    values = page.evaluate("hueWardMap.querySourceFeatures('wardfig')"
                           ".map(f => f.properties.value)")
    assert any(v for v in values)  # wards carry their figure on the choropleth
    page.select_option("#figure", "on_time_share")
    page.wait_for_function("hueWardMap.querySourceFeatures('wardfig').some("
                           "f => f.properties.value > 0 && f.properties.value <= 1)")
    # Refreshed live: a new report counts within seconds, without reloading the page.
    page.evaluate("window.__notReloaded = true")
    lon, lat = DAI_NOI_LONLAT
    ref = post_json(f"{live_server}/incidents", {"category": "noise", "lon": lon,
                                                 "lat": lat})["ref"]
    try:
        page.wait_for_function(
            f"document.getElementById('k-count').innerText === '{n + 1:,}'", timeout=20_000)
        assert page.evaluate("window.__notReloaded") is True
    finally:
        with psycopg.connect(demo_settings.dsn) as conn:
            conn.execute("DELETE FROM incidents WHERE ref = %s", (ref,))
            conn.commit()
    # A failing heatmap query (HTTP 503) leaves the rest of the board working; it is the
    # only console error tolerated, and only when the server really answered so.
    errors = [e for e in console.errors
              if not ("503" in e and hexbins and hexbins[-1] == 503)]
    assert errors == []


def test_planner_whats_here_area_and_export(open_page, live_server, demo_settings, tmp_path):
    page, console = open_page(f"{live_server}/planner", accept_downloads=True)
    wait_map_idle(page)
    box = page.locator("#map canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.click(cx, cy)
    page.wait_for_function("huePlanner.results > 0", timeout=15_000)
    here = page.locator("#here").inner_text()
    assert "Phường" in here  # the ward of the map centre
    assert "Land parcels" in here and "Flood depth (m)" in here  # an English browser
    page.click("#lang-switch")  # the report follows the interface language
    page.wait_for_function("document.querySelector('#here').innerText.includes('Thửa đất')")
    assert "Độ sâu ngập (m)" in page.locator("#here").inner_text()
    assert page.locator("#collection option[value=parcels]").inner_text() == "Thửa đất"
    page.click("#lang-switch")

    page.click("#draw")
    ring = []
    for dx, dy in [(-80, -60), (80, -60), (80, 60), (-80, 60)]:
        page.mouse.click(cx + dx, cy + dy)
        ring.append(page.evaluate(f"(() => {{ const p = hueMap.unproject([{box['width'] / 2 + dx},"
                                  f" {box['height'] / 2 + dy}]); return [p.lng, p.lat]; }})()"))
    page.click("#finish")
    page.wait_for_function("huePlanner.results > 1", timeout=30_000)
    polygon = shapely.Polygon(ring)
    with psycopg.connect(demo_settings.dsn) as conn:
        n, = conn.execute("SELECT count(*) FROM land_parcels WHERE ST_Intersects(geom, "
                          "ST_GeomFromText(%s, 4326))", (polygon.wkt,)).fetchone()
    assert n > 0
    assert page.locator("#r-count").inner_text() == f"{n:,}"

    with page.expect_download() as dl:
        page.click('#exports button[data-what="intersects"][data-f="gpkg"]')
    path = tmp_path / "intersects.gpkg"
    dl.value.save_as(path)
    info = pyogrio.read_info(path)
    assert info["features"] == n
    assert "owner_name" not in list(info["fields"])
    assert console.errors == []
