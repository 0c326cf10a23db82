"""The staff API: intake by channel, the state machine (only legal changes), assignment,
re-routing moves and recategorizations, duplicates, ratings, overdue lists, the history,
ward scoping of inspectors, privacy, photos."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator

import psycopg
import pyproj
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from gis.auth.accounts import create_api_key
from gis.settings import Settings
from gis.workdays import due_at

TO_M = pyproj.Transformer.from_crs(4326, 9214, always_xy=True).transform
TO_LL = pyproj.Transformer.from_crs(9214, 4326, always_xy=True).transform
# Two points in different wards (checked in the fixture) and the wards' codes.
A = (107.5905, 16.4580)
B = (107.5450, 16.4530)


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def wards(database_url: str) -> tuple[str, str]:
    with psycopg.connect(database_url) as conn:
        codes = [conn.execute("SELECT gso_code FROM admin_units WHERE level = 'ward' AND "
                              "ST_Intersects(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))",
                              p).fetchone()[0] for p in (A, B)]
    assert codes[0] != codes[1]
    return codes[0], codes[1]


@pytest.fixture(scope="module")
def keys(database_url: str, wards: tuple[str, str]) -> dict[str, dict[str, str]]:
    with psycopg.connect(database_url) as conn:
        made = {"inspector_a": create_api_key(conn, "inspector", "h6-insp-a", [wards[0]]),
                "inspector_b": create_api_key(conn, "inspector", "h6-insp-b", [wards[1]]),
                "admin": create_api_key(conn, "admin", "h6-admin"),
                "citizen": create_api_key(conn, "citizen", "h6-citizen")}
        conn.commit()
    return {k: {"X-API-Key": v} for k, v in made.items()}


def _file(client: TestClient, lonlat=A, category="roads", headers=None, **extra) -> dict:
    body = {"category": category, "description": "Ổ gà", "lon": lonlat[0], "lat": lonlat[1],
            "reporter_name": "Lê Thị Kín", "reporter_phone": "0905111222", **extra}
    r = client.post("/incidents", json=body, headers=headers or {})
    assert r.status_code == 201, r.text
    return r.json()


def _events(client: TestClient, ref: str, keys: dict) -> list[dict]:
    r = client.get(f"/incidents/{ref}/events", headers=keys["admin"])
    assert r.status_code == 200, r.text
    return r.json()["events"]


def test_intake_channels_and_privacy(client: TestClient, keys: dict, wards) -> None:
    anon = _file(client)
    assert anon["channel"] == "web" and anon["token"] and anon["ward_code"] == wards[0]
    assert "reporter_name" not in anon
    cit = _file(client, headers=keys["citizen"])
    assert cit["channel"] == "app"
    hot = _file(client, headers=keys["inspector_a"], channel="hotline", priority="urgent")
    assert hot["channel"] == "hotline" and hot["priority"] == "urgent"
    assert hot["reporter_name"] == "Lê Thị Kín"
    r = client.post("/incidents", json={"category": "roads", "lon": A[0], "lat": A[1],
                                        "channel": "hotline"})
    assert r.status_code == 403
    public = client.get(f"/incidents/{anon['ref']}").json()
    assert "reporter_name" not in public and "Kín" not in json.dumps(public)
    staff = client.get(f"/incidents/{anon['ref']}", headers=keys["inspector_a"]).json()
    assert staff["reporter_phone"] == "0905111222"
    assert client.get(f"/incidents/{anon['ref']}",
                      headers=keys["inspector_b"]).status_code == 403
    created = dt.datetime.fromisoformat(hot["created_at"])
    assert dt.datetime.fromisoformat(hot["sla_due_at"]) == due_at(created, "roads", True)
    r = client.post("/incidents", json={"category": "roads", "lon": A[0]})
    assert r.status_code == 400
    r = client.post("/incidents", json={"category": "roads", "lon": A[0], "lat": A[1],
                                        "description": "x" * 4001})
    assert r.status_code == 400


def test_a_note_alone_changes_nothing_else(client: TestClient, keys: dict) -> None:
    ref = _file(client)["ref"]
    url = f"/incidents/{ref}/notes"
    assert client.post(url, json={"note": "đã gọi điện"}).status_code == 401
    assert client.post(url, json={"note": "x"}, headers=keys["citizen"]).status_code == 403
    assert client.post(url, json={"note": "x"}, headers=keys["inspector_b"]).status_code == 403
    assert client.post(url, json={"note": ""}, headers=keys["inspector_a"]).status_code == 400
    assert client.post(url, json={"note": "   "},
                       headers=keys["inspector_a"]).status_code == 400
    assert client.get("/incidents/" + "9" * 30).status_code == 404
    r = client.post(url, json={"note": "đã gọi điện cho người báo"}, headers=keys["inspector_a"])
    assert r.status_code == 200 and r.json()["status"] == "received", r.text
    ev = _events(client, ref, keys)
    assert [(e["kind"], e["from_status"], e["to_status"], e["note"]) for e in ev][-1] == (
        "note", "received", "received", "đã gọi điện cho người báo")
    assert ev[-1]["actor"] == "inspector:h6-insp-a" and len(ev) == 2


def test_state_machine_allows_only_legal_changes(client: TestClient, keys: dict) -> None:
    ref = _file(client)["ref"]
    url = f"/incidents/{ref}/status"
    assert client.post(url, json={"status": "assigned"}).status_code == 401
    assert client.post(url, json={"status": "assigned"},
                       headers=keys["citizen"]).status_code == 403
    assert client.post(url, json={"status": "assigned"},
                       headers=keys["inspector_b"]).status_code == 403
    r = client.post(url, json={"status": "resolved"}, headers=keys["inspector_a"])
    assert r.status_code == 409, r.text
    r = client.post(f"/incidents/{ref}/assign", json={"assignee": "inspector:lan"},
                    headers=keys["inspector_a"])
    assert r.status_code == 200 and r.json()["status"] == "assigned"
    assert r.json()["assignee"] == "inspector:lan"
    for step in ("in_progress", "resolved"):
        r = client.post(url, json={"status": step, "note": f"bước {step}"},
                        headers=keys["inspector_a"])
        assert r.status_code == 200 and r.json()["status"] == step, r.text
    assert r.json()["resolved_at"]
    assert client.post(url, json={"status": "in_progress"},
                       headers=keys["inspector_a"]).status_code == 409
    assert client.post(url, json={"status": "bogus"},
                       headers=keys["inspector_a"]).status_code == 400
    assert client.post(url, json={"status": "reopened", "note": "nul\x00"},
                       headers=keys["inspector_a"]).status_code == 400
    ev = _events(client, ref, keys)
    assert [(e["kind"], e["from_status"], e["to_status"]) for e in ev] == [
        ("received", None, "received"), ("assigned", "received", "assigned"),
        ("in_progress", "assigned", "in_progress"), ("resolved", "in_progress", "resolved")]
    assert ev[1]["actor"] == "inspector:h6-insp-a"
    assert ev[1]["data"]["assignee"] == {"before": None, "after": "inspector:lan"}
    assert ev[3]["note"] == "bước resolved"


def test_rating_with_token_and_poor_rating_reopens(client: TestClient, keys: dict) -> None:
    made = _file(client)
    ref, token = made["ref"], made["token"]
    r = client.post(f"/incidents/{ref}/rating", json={"token": token, "rating": 5})
    assert r.status_code == 409  # not resolved yet
    for step in ("assigned", "in_progress", "resolved"):
        client.post(f"/incidents/{ref}/status", json={"status": step}, headers=keys["admin"])
    assert client.post(f"/incidents/{ref}/rating",
                       json={"token": "wrong", "rating": 5}).status_code == 403
    assert client.post(f"/incidents/{ref}/rating",
                       json={"token": token, "rating": 9}).status_code == 400
    r = client.post(f"/incidents/{ref}/rating", json={"token": token, "rating": 1})
    assert r.status_code == 200 and r.json()["status"] == "reopened"
    assert r.json()["rating"] == 1 and r.json()["resolved_at"] is None
    kinds = [(e["kind"], e["actor"]) for e in _events(client, ref, keys)][-2:]
    assert kinds == [("rated", "citizen"), ("reopened", "system")]
    for step in ("in_progress", "resolved"):
        client.post(f"/incidents/{ref}/status", json={"status": step}, headers=keys["admin"])
    r = client.post(f"/incidents/{ref}/rating", json={"token": token, "rating": 4})
    assert r.json()["status"] == "resolved" and r.json()["rating"] == 4


def test_moving_and_recategorizing_reroute_and_record(client: TestClient, keys: dict,
                                                      wards) -> None:
    made = _file(client)
    ref = made["ref"]
    assert client.patch(f"/incidents/{ref}", json={"lon": B[0], "lat": B[1]},
                        headers=keys["inspector_b"]).status_code == 403
    r = client.patch(f"/incidents/{ref}", json={"lon": B[0], "lat": B[1]},
                     headers=keys["inspector_a"])
    assert r.status_code == 200 and r.json()["ward_code"] == wards[1]
    assert client.patch(f"/incidents/{ref}", json={"lon": 105.85, "lat": 21.03},
                        headers=keys["admin"]).status_code == 400
    r = client.patch(f"/incidents/{ref}", json={"category": "construction"},
                     headers=keys["inspector_b"])
    assert r.status_code == 200
    created = dt.datetime.fromisoformat(made["created_at"])
    assert dt.datetime.fromisoformat(r.json()["sla_due_at"]) == due_at(created, "construction")
    ev = _events(client, ref, keys)
    moved, recat = ev[-2], ev[-1]
    assert moved["kind"] == "rerouted"
    assert moved["data"]["ward_code"] == {"before": wards[0], "after": wards[1]}
    assert recat["kind"] == "corrected"
    assert recat["data"]["category"] == {"before": "roads", "after": "construction"}


def test_duplicates_suggested_and_merged(client: TestClient, keys: dict) -> None:
    mx, my = TO_M(107.5912, 16.4590)
    master = _file(client, lonlat=(107.5912, 16.4590), category="lighting")
    near = _file(client, lonlat=TO_LL(mx + 120, my + 50), category="lighting")
    assert master["ref"] in [c["ref"] for c in near["duplicate_candidates"]]
    cands = client.get(f"/incidents/{near['ref']}/duplicates", headers=keys["admin"]).json()
    d = next(c for c in cands["candidates"] if c["ref"] == master["ref"])
    assert d["distance_m"] == pytest.approx(130.0, rel=0.002)  # √(120² + 50²), geodesic
    far = _file(client, lonlat=TO_LL(mx + 245, my + 80), category="lighting")  # 257.7 m
    other_cat = _file(client, lonlat=TO_LL(mx + 10, my), category="waste")
    for report in (far, other_cat):
        got = client.get(f"/incidents/{report['ref']}/duplicates", headers=keys["admin"])
        assert master["ref"] not in [c["ref"] for c in got.json()["candidates"]]
    r = client.post(f"/incidents/{near['ref']}/duplicate", json={"master": master["ref"]},
                    headers=keys["admin"])
    assert r.status_code == 200 and r.json()["status"] == "duplicate"
    assert r.json()["duplicate_of"] == master["ref"]
    r = client.post(f"/incidents/{master['ref']}/duplicate", json={"master": near["ref"]},
                    headers=keys["admin"])
    assert r.status_code == 409
    assert _events(client, master["ref"], keys)[-1]["data"] == {"duplicate": near["ref"]}


def test_overdue_list_per_ward(client: TestClient, keys: dict, wards,
                               database_url: str) -> None:
    ref = _file(client)["ref"]
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE incidents SET sla_due_at = now() - interval '1 day' WHERE ref = %s",
                     (ref,))
    r = client.get("/incidents/overdue", headers=keys["inspector_a"])
    assert r.status_code == 200
    assert ref in [x["ref"] for x in r.json()["wards"][wards[0]]]
    assert client.get("/incidents/overdue", params={"ward": wards[0]},
                      headers=keys["inspector_b"]).status_code == 403
    r = client.get("/incidents/overdue", headers=keys["inspector_b"]).json()
    assert ref not in json.dumps(r)
    listed = client.get("/incidents", params={"overdue": "true"}, headers=keys["inspector_a"])
    items = {x["ref"]: x for x in listed.json()["items"]}
    assert items[ref]["overdue"] is True
    assert all(x["overdue"] for x in items.values())
    fresh = _file(client)
    assert fresh["overdue"] is False


def test_staff_photos_with_token_limits_and_thumbnails(client: TestClient,
                                                        keys: dict) -> None:
    made = _file(client)
    ref, token = made["ref"], made["token"]
    png = io.BytesIO()
    img = Image.new("RGB", (800, 600), (0, 120, 0))
    info = __import__("PIL.PngImagePlugin", fromlist=["PngInfo"]).PngInfo()
    info.add_text("Comment", "secret camera note")
    img.save(png, "PNG", pnginfo=info)
    files = [("photo", ("a.png", png.getvalue(), "image/png"))]
    assert client.post(f"/incidents/{ref}/photos", files=files,
                       data={"token": "bad"}).status_code == 403
    r = client.post(f"/incidents/{ref}/photos", files=files, data={"token": token})
    assert r.status_code == 201, r.text
    p = r.json()["photos"][0]
    assert "stripped_metadata" not in p
    thumb = client.get(p["thumb_url"][p["thumb_url"].index("/incidents/"):])
    assert thumb.status_code == 200 and max(Image.open(io.BytesIO(thumb.content)).size) == 256
    assert b"secret camera note" not in thumb.content
    staff = client.get(f"/incidents/{ref}", headers=keys["admin"]).json()
    assert staff["photos"][0]["stripped_metadata"]["other"] == ["Comment"]
    many = [("photo", (f"{i}.png", png.getvalue(), "image/png")) for i in range(5)]
    r = client.post(f"/incidents/{ref}/photos", files=many, headers=keys["admin"])
    assert r.status_code == 413
    webp = io.BytesIO()
    img.save(webp, "WEBP")
    r = client.post(f"/incidents/{ref}/photos", headers=keys["admin"],
                    files=[("photo", ("w.webp", webp.getvalue(), "image/webp"))])
    assert r.status_code == 201 and len(r.json()["photos"]) == 2
    gif = io.BytesIO()
    img.save(gif, "GIF")
    r = client.post(f"/incidents/{ref}/photos", headers=keys["admin"],
                    files=[("photo", ("g.gif", gif.getvalue(), "image/gif"))])
    assert r.status_code == 415
