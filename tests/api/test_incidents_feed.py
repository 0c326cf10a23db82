"""The live feed over a real HTTP server: events arrive after commit, filtered by ward and
category, resumable with Last-Event-ID, inspectors limited to their wards, no private data
for the public."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest
import uvicorn

from api.app import create_app
from gis.auth.accounts import create_api_key
from gis.settings import Settings

A = (107.5905, 16.4580)
B = (107.5450, 16.4530)


@pytest.fixture(scope="module")
def base(settings: Settings) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def wards(database_url: str) -> tuple[str, str]:
    with psycopg.connect(database_url) as conn:
        return tuple(conn.execute(
            "SELECT gso_code FROM admin_units WHERE level = 'ward' AND "
            "ST_Intersects(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))", p).fetchone()[0]
            for p in (A, B))


@pytest.fixture(scope="module")
def keys(database_url: str, wards) -> dict[str, dict[str, str]]:
    with psycopg.connect(database_url) as conn:
        out = {"inspector_b": create_api_key(conn, "inspector", "h6-feed-b", [wards[1]]),
               "admin": create_api_key(conn, "admin", "h6-feed-admin")}
        conn.commit()
    return {k: {"X-API-Key": v} for k, v in out.items()}


class Subscriber(threading.Thread):
    """Reads an SSE stream in the background; ``ready`` once the server listens."""

    def __init__(self, url: str, headers: dict | None = None, params: dict | None = None):
        super().__init__(daemon=True)
        self.url, self.headers, self.params = url, headers or {}, params or {}
        self.ready = threading.Event()
        self.events: list[dict] = []
        self.received_at: list[float] = []
        self.status: int | None = None

    def run(self) -> None:
        with httpx.stream("GET", self.url, headers=self.headers, params=self.params,
                          timeout=20) as r:
            self.status = r.status_code
            if r.status_code != 200:
                self.ready.set()
                return
            event: dict = {}
            for line in r.iter_lines():
                if line.startswith("retry:"):
                    self.ready.set()
                elif line.startswith("id: "):
                    event["id"] = int(line[4:])
                elif line.startswith("event: "):
                    event["event"] = line[7:]
                elif line.startswith("data: "):
                    event["data"] = json.loads(line[6:])
                elif line == "" and event:
                    self.events.append(event)
                    self.received_at.append(time.monotonic())
                    event = {}

    def start_and_wait(self) -> Subscriber:
        self.start()
        assert self.ready.wait(10)
        return self


def _file(base: str, lonlat, category: str = "roads") -> dict:
    r = httpx.post(f"{base}/incidents", json={"category": category, "lon": lonlat[0],
                                              "lat": lonlat[1], "reporter_name": "Bí Mật"})
    assert r.status_code == 201, r.text
    return r.json()


def test_ward_filter_and_latency(base: str, wards) -> None:
    sub = Subscriber(f"{base}/incidents/events", params={"ward": wards[0], "limit": 1})
    sub.start_and_wait()
    _file(base, B)
    t0 = time.monotonic()
    made = _file(base, A)
    sub.join(10)
    assert not sub.is_alive() and len(sub.events) == 1
    ev = sub.events[0]
    assert ev["event"] == "received" and ev["data"]["ref"] == made["ref"]
    assert ev["data"]["ward_code"] == wards[0]
    assert "actor" not in ev["data"] and "Bí Mật" not in json.dumps(ev)
    assert sub.received_at[0] - t0 < 2.0


def test_category_filter_and_resume_with_last_event_id(base: str, keys: dict) -> None:
    sub = Subscriber(f"{base}/incidents/events", headers=keys["admin"],
                     params={"category": "trees", "limit": 1}).start_and_wait()
    _file(base, A, "roads")
    made = _file(base, A, "trees")
    sub.join(10)
    first = sub.events[0]
    assert first["data"]["ref"] == made["ref"] and first["data"]["actor"] == "public:web"
    for step in ("assigned", "in_progress"):
        r = httpx.post(f"{base}/incidents/{made['ref']}/status", json={"status": step},
                       headers=keys["admin"])
        assert r.status_code == 200
    resumed = Subscriber(f"{base}/incidents/events",
                         headers={**keys["admin"], "Last-Event-ID": str(first["id"])},
                         params={"category": "trees", "limit": 2}).start_and_wait()
    resumed.join(10)
    assert [e["event"] for e in resumed.events] == ["assigned", "in_progress"]
    assert all(e["id"] > first["id"] for e in resumed.events)


def test_inspectors_see_only_their_wards(base: str, keys: dict, wards) -> None:
    denied = Subscriber(f"{base}/incidents/events", headers=keys["inspector_b"],
                        params={"ward": wards[0]})
    denied.start()
    denied.join(10)
    assert denied.status == 403
    sub = Subscriber(f"{base}/incidents/events", headers=keys["inspector_b"],
                     params={"limit": 1}).start_and_wait()
    _file(base, A)
    made = _file(base, B)
    sub.join(10)
    assert [e["data"]["ref"] for e in sub.events] == [made["ref"]]
    bad = httpx.get(f"{base}/incidents/events", headers={"Last-Event-ID": "abc"})
    assert bad.status_code == 400
