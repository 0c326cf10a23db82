"""Screenshots of the web pages for the README: the public map, the inspector map, the
operations dashboard and the planner page, taken with Debian's Chromium (playwright).

    .venv/bin/python scripts/screenshots.py [--base http://127.0.0.1:8000] [--out docs/screenshots]

The server must be running (``make run``). For the inspector map a temporary inspector account
is created in the server's database (``HUEGIS_DATABASE_URL`` or the managed cluster) and removed
afterwards, unless ``--username``/``--password`` name an existing one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
from playwright.sync_api import Page, sync_playwright

from gis.auth.accounts import create_user
from gis.settings import PROJECT_ROOT, Settings

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IDLE = "window.{0} && window.{0}.loaded() && window.{0}.areTilesLoaded()"


@contextlib.contextmanager
def inspector(base: str, username: str | None, password: str | None
              ) -> Iterator[tuple[str, str]]:
    if username and password:
        yield username, password
        return
    # The busiest ward of the demo: its inspector has the most to show.
    with urllib.request.urlopen(f"{base}/stats/incidents?group_by=ward", timeout=60) as r:
        groups = json.load(r)["groups"]
    ward = max(groups, key=lambda g: g["count"])["key"]
    name, pw = f"screenshots-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    dsn = Settings().dsn
    with psycopg.connect(dsn) as conn:
        create_user(conn, name, pw, "inspector", [ward])
        conn.commit()
    try:
        yield name, pw
    finally:
        with psycopg.connect(dsn) as conn:
            conn.execute("DELETE FROM users WHERE username = %s", (name,))
            conn.commit()


def shoot(page: Page, url: str, out: Path, ready: str, settle_ms: int = 800) -> None:
    page.goto(url)
    page.wait_for_function(ready, timeout=60_000)
    page.wait_for_timeout(settle_ms)
    page.screenshot(path=str(out))
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="http://127.0.0.1:8000")
    ap.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "screenshots")
    ap.add_argument("--username")
    ap.add_argument("--password")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    a = ap.parse_args()
    base = a.base.rstrip("/")
    a.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=a.chromium, args=ARGS)
        ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="vi-VN")
        page = ctx.new_page()
        shoot(page, f"{base}/map#map=15.2/16.4665/107.5850&layers=wards,parcels,tourism,"
                    "health,education", a.out / "public-map.png", IDLE.format("hueMap"))
        shoot(page, f"{base}/dashboard", a.out / "dashboard.png",
              "window.hueDashboard && hueDashboard.refreshed > 0 && "
              + IDLE.format("hueWardMap"), 2500)
        with inspector(base, a.username, a.password) as (user, pw):
            page.goto(f"{base}/inspector")
            page.fill("#username", user)
            page.fill("#password", pw)
            page.click("#signin button[type=submit]")
            page.wait_for_selector("#reports li", timeout=60_000)
            page.wait_for_function(IDLE.format("hueMap"), timeout=60_000)
            page.click("#reports li button")
            page.wait_for_selector("#detail #act", timeout=30_000)
            page.wait_for_timeout(800)
            page.screenshot(path=str(a.out / "inspector.png"))
            print(f"wrote {a.out / 'inspector.png'}")
        page.evaluate("sessionStorage.clear()")
        page.goto(f"{base}/planner")
        page.wait_for_function(IDLE.format("hueMap"), timeout=60_000)
        box = page.locator("#map canvas").bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.click(cx, cy)
        page.wait_for_function("huePlanner.results > 0")
        page.click("#draw")
        for dx, dy in [(-120, -90), (110, -100), (130, 80), (-90, 110)]:
            page.mouse.click(cx + dx, cy + dy)
        page.click("#finish")
        page.wait_for_function("huePlanner.results > 1", timeout=60_000)
        page.check("#flood-layer")
        page.wait_for_function(IDLE.format("hueMap"), timeout=60_000)
        page.wait_for_timeout(800)
        page.screenshot(path=str(a.out / "planner.png"))
        print(f"wrote {a.out / 'planner.png'}")
        browser.close()


if __name__ == "__main__":
    main()
