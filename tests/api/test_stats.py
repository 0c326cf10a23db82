"""Dashboard figures: every group of every grouping equals a plain recount done in Python
from the reports themselves (the rollup is maintained by triggers, including after workflow
changes); hexagon heatmaps count every report once."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterator

import numpy as np
import psycopg
import pyproj
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import Point, shape

from api.app import create_app
from gis.settings import Settings

LOCAL = dt.timezone(dt.timedelta(hours=7))
GROUPINGS = (None, "ward", "category", "day", "week", "month", "status", "channel")
TO_M = pyproj.Transformer.from_crs(4326, 9214, always_xy=True).transform


@pytest.fixture(scope="module")
def demo(demo_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(demo_settings)) as c:
        yield c


def _to_m(xy: np.ndarray) -> np.ndarray:
    return np.column_stack(TO_M(xy[:, 0], xy[:, 1]))


def _rows(dsn: str) -> list[dict]:
    with psycopg.connect(dsn) as conn:
        cur = conn.execute("SELECT ward_code, category, channel, status, created_at, "
                           "resolved_at, sla_due_at, rating, ST_X(geom), ST_Y(geom) "
                           "FROM incidents")
        cols = ("ward", "category", "channel", "status", "created", "resolved", "due",
                "rating", "lon", "lat")
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _key(r: dict, by: str | None):
    day = r["created"].astimezone(LOCAL).date()
    return {None: "all", "ward": r["ward"] or "", "category": r["category"],
            "channel": r["channel"], "status": r["status"], "day": day.isoformat(),
            "week": (day - dt.timedelta(days=day.weekday())).isoformat(),
            "month": day.replace(day=1).isoformat()}[by]


def _recount(rows: list[dict], by: str | None) -> list[dict]:
    groups: dict = defaultdict(list)
    for r in rows:
        groups[_key(r, by)].append(r)
    out = []
    for key in sorted(groups):
        g = groups[key]
        processed = [r for r in g if r["status"] in ("resolved", "rejected", "duplicate")]
        resolved = [r for r in g if r["status"] == "resolved" and r["resolved"] is not None]
        secs = [(r["resolved"] - r["created"]).total_seconds() for r in resolved]
        on_time = [r for r in resolved if r["due"] is not None and r["resolved"] <= r["due"]]
        rated = [r for r in g if r["rating"] is not None]
        out.append({
            "key": key, "count": len(g), "processed": len(processed),
            "processed_share": round(len(processed) / len(g), 6),
            "resolved": len(resolved),
            "on_time_share": round(len(on_time) / len(resolved), 6) if resolved else None,
            "mean_hours_to_resolve": round(sum(secs) / len(secs) / 3600, 3) if secs else None,
            "median_hours_to_resolve": (round(statistics.median(secs) / 3600, 3)
                                        if secs else None),
            "rated": len(rated),
            "satisfaction_share": (round(sum(r["rating"] >= 4 for r in rated) / len(rated), 6)
                                   if rated else None)})
    return out


@pytest.mark.parametrize("by", GROUPINGS)
def test_figures_equal_a_plain_recount(demo: TestClient, demo_settings: Settings,
                                       by: str | None) -> None:
    rows = _rows(demo_settings.dsn)
    assert len(rows) == 5000
    r = demo.get("/stats/incidents", params={"group_by": by} if by else {})
    assert r.status_code == 200, r.text
    assert r.json()["groups"] == _recount(rows, by)


def test_filters_equal_a_plain_recount(demo: TestClient, demo_settings: Settings) -> None:
    rows = _rows(demo_settings.dsn)
    ward = max({r["ward"] for r in rows}, key=lambda w: sum(r["ward"] == w for r in rows))
    start, end = dt.date(2024, 3, 1), dt.date(2025, 10, 31)
    keep = [r for r in rows if r["ward"] == ward and r["category"] == "drainage"
            and start <= r["created"].astimezone(LOCAL).date() <= end]
    assert keep
    r = demo.get("/stats/incidents", params={"from": start.isoformat(), "to": end.isoformat(),
                                             "ward": ward, "category": "drainage",
                                             "group_by": "month"})
    assert r.json()["groups"] == _recount(keep, "month")
    # periods cut through months (daily rollup at the edges, monthly inside), or inside one
    for start, end, by in ((dt.date(2023, 3, 15), dt.date(2025, 10, 10), "category"),
                           (dt.date(2023, 3, 15), dt.date(2023, 3, 31), None),
                           (dt.date(2025, 6, 1), dt.date(2025, 6, 20), "status"),
                           (None, dt.date(2024, 2, 10), "channel"),
                           (dt.date(2025, 2, 2), None, "week")):
        keep = [r for r in rows if (start is None or start <= r["created"].astimezone(
            LOCAL).date()) and (end is None or r["created"].astimezone(LOCAL).date() <= end)]
        params = {"group_by": by} if by else {}
        params.update({k: v.isoformat() for k, v in (("from", start), ("to", end)) if v})
        assert demo.get("/stats/incidents", params=params).json()["groups"] == _recount(
            keep, by), (start, end, by)
    overall = demo.get("/stats/incidents").json()["groups"][0]
    assert overall["processed_share"] > 0.9 and overall["satisfaction_share"] > 0.85


def test_rollup_follows_workflow_changes(settings: Settings) -> None:
    """On the test database, after the reports filed and moved by the other tests (and some
    made here), the figures still equal the recount."""
    with TestClient(create_app(settings)) as client:
        for i in range(3):
            client.post("/open311/v2/requests.json", data={
                "service_code": "noise", "lat": "16.466", "long": f"{107.58 + i / 500}"})
        with psycopg.connect(settings.dsn) as conn:
            conn.execute("UPDATE incidents SET status = 'resolved', resolved_at = created_at + "
                         "interval '5 hours', rating = 5 WHERE category = 'noise'")
            conn.execute("DELETE FROM incidents WHERE id = (SELECT max(id) FROM incidents "
                         "WHERE category = 'noise')")
        rows = _rows(settings.dsn)
        for by in ("status", "category", "day"):
            assert client.get("/stats/incidents", params={"group_by": by}).json()[
                "groups"] == _recount(rows, by)


def test_bad_parameters_are_400(demo: TestClient) -> None:
    for params in ({"group_by": "year"}, {"from": "2024-13-01"}, {"category": "x"},
                   {"from": "2025-01-02", "to": "2025-01-01"}):
        r = demo.get("/stats/incidents", params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["code"] == "InvalidParameterValue"
    assert demo.get("/stats/incidents/hexbins", params={"size": 5}).status_code == 400


@pytest.mark.parametrize(("category", "size"), [("waste", 1000), ("public_order", 300)])
def test_hexbins_count_every_report_once(demo: TestClient, demo_settings: Settings,
                                         category: str, size: int) -> None:
    with psycopg.connect(demo_settings.dsn) as conn:  # public locations (rounded for some)
        pts = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM incidents_public "
                           "WHERE category = %s", (category,)).fetchall()
    rows = [{"lon": x, "lat": y} for x, y in pts]
    r = demo.get("/stats/incidents/hexbins", params={"category": category, "size": size})
    assert r.status_code == 200, r.text
    fc = r.json()
    assert sum(f["properties"]["count"] for f in fc["features"]) == len(rows)
    hexes = [shape(f["geometry"]) for f in fc["features"]]
    assert all(len(h.exterior.coords) == 7 for h in hexes)
    metric = shapely.transform(hexes[0], _to_m)
    # a regular hexagon of edge s has area 3√3/2 s²
    assert metric.area == pytest.approx(3 * 3 ** 0.5 / 2 * size ** 2, rel=0.002)
    # every report is counted in the hexagon that contains it (shapely, in EPSG:9214)
    tree = shapely.STRtree([shapely.transform(h, _to_m) for h in hexes])
    counts = [0] * len(hexes)
    for row in rows:
        hit = tree.query(Point(TO_M(row["lon"], row["lat"])), predicate="within")
        assert len(hit) == 1
        counts[hit[0]] += 1
    assert counts == [f["properties"]["count"] for f in fc["features"]]
