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
        cur = conn.execute("SELECT ward_code, category, channel, priority, status, "
                           "created_at, resolved_at, sla_due_at, rating, ST_X(geom), "
                           "ST_Y(geom) FROM incidents")
        cols = ("ward", "category", "channel", "priority", "status", "created", "resolved",
                "due", "rating", "lon", "lat")
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _key(r: dict, by: str | None):
    day = r["created"].astimezone(LOCAL).date()
    return {None: "all", "ward": r["ward"] or "", "category": r["category"],
            "channel": r["channel"], "priority": r["priority"], "status": r["status"],
            "day": day.isoformat(),
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
                           (dt.date(2025, 2, 2), None, "week"),
                           (dt.date(2022, 12, 30), dt.date(2025, 1, 2), "priority"),
                           (dt.date(2024, 1, 1), dt.date(2024, 12, 31), "month")):
        keep = [r for r in rows if (start is None or start <= r["created"].astimezone(
            LOCAL).date()) and (end is None or r["created"].astimezone(LOCAL).date() <= end)]
        params = {"group_by": by} if by else {}
        params.update({k: v.isoformat() for k, v in (("from", start), ("to", end)) if v})
        assert demo.get("/stats/incidents", params=params).json()["groups"] == _recount(
            keep, by), (start, end, by)
    # a ward or a category with every other grouping (the rollups' levels, and the reports
    # where a level keeps no histogram: per ward and category by channel)
    for params, keep in (({"ward": ward, "group_by": "day"}, lambda r: r["ward"] == ward),
                         ({"ward": ward, "group_by": "category"}, lambda r: r["ward"] == ward),
                         ({"category": "noise", "group_by": "ward"},
                          lambda r: r["category"] == "noise"),
                         ({"category": "waste", "group_by": "week", "from": "2024-02-14"},
                          lambda r: r["category"] == "waste" and r["created"].astimezone(
                              LOCAL).date() >= dt.date(2024, 2, 14)),
                         ({"ward": ward, "category": "drainage", "group_by": "channel",
                           "to": "2025-07-15"},
                          lambda r: r["ward"] == ward and r["category"] == "drainage"
                          and r["created"].astimezone(LOCAL).date() <= dt.date(2025, 7, 15))):
        got = demo.get("/stats/incidents", params=params).json()["groups"]
        assert got == _recount([r for r in rows if keep(r)], params["group_by"]), params
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
            # a resolution moved in time, a report moved, one reopened
            conn.execute("UPDATE incidents SET resolved_at = resolved_at + interval '3 days' "
                         "WHERE id = (SELECT min(id) FROM incidents WHERE status = 'resolved')")
            conn.execute("UPDATE incidents SET geom = ST_SetSRID(ST_MakePoint(107.59, 16.46), "
                         "4326), category = 'public_order' WHERE id = (SELECT min(id) FROM "
                         "incidents WHERE category = 'noise')")
            conn.execute("UPDATE incidents SET status = 'reopened', resolved_at = NULL WHERE id "
                         "= (SELECT max(id) FROM incidents WHERE status = 'resolved')")
        rows = _rows(settings.dsn)
        for by in GROUPINGS + ("priority",):
            r = client.get("/stats/incidents", params={"group_by": by} if by else {})
            assert r.status_code == 200, r.text
            assert r.json()["groups"] == _recount(rows, by), by
        assert _hex_counts(client, {"size": 500}) == _hex_recount(settings.dsn, 500, {})
    # the rollups kept by the triggers, once what new reports appended is folded in, are
    # those a rebuild from scratch makes
    with psycopg.connect(settings.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM incident_hex_delta").fetchone()[0] > 0
        conn.execute("SELECT huegis_incident_dash_compact()")
        for t in ("incident_hex_delta", "incident_rollup_day_all_delta"):
            assert conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] == 0
        tables = ("incident_resolve_hist", "incident_hex_rollup", "incident_resolve_median",
                  "incident_rollup_day_all")
        before = [sorted(conn.execute(f"SELECT * FROM {t} WHERE n <> 0").fetchall())
                  for t in tables]
        conn.execute("SELECT huegis_incident_dash_rebuild()")
        after = [sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in tables]
        assert before == after and all(before)


def test_bad_parameters_are_400(demo: TestClient) -> None:
    for params in ({"group_by": "year"}, {"from": "2024-13-01"}, {"category": "x"},
                   {"from": "2025-01-02", "to": "2025-01-01"}):
        r = demo.get("/stats/incidents", params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["code"] == "InvalidParameterValue"
    for size in (5, 300, 750, 10000):  # only the sizes the rollup keeps
        r = demo.get("/stats/incidents/hexbins", params={"size": size})
        assert r.status_code == 400 and "500, 1000" in r.json()["description"]


def _hex_counts(client: TestClient, params: dict) -> dict:
    r = client.get("/stats/incidents/hexbins", params=params)
    assert r.status_code == 200, r.text
    return {(f["properties"]["i"], f["properties"]["j"]): f["properties"]["count"]
            for f in r.json()["features"]}


def _hex_recount(dsn: str, size: int, params: dict) -> dict:
    """Cells of the public locations (incidents_public), found independently: the hexagon of
    ST_HexagonGrid containing each point, and the filters applied in SQL here."""
    conds, args = ["true"], []
    for name, cond in (("from", "(created_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date >= %s"),
                       ("to", "(created_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date <= %s"),
                       ("ward", "ward_code = %s"), ("category", "category = %s")):
        if name in params:
            conds.append(cond)
            args.append(params[name])
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT h.i, h.j, count(*) FROM incidents_public p CROSS JOIN LATERAL "
            "ST_HexagonGrid(%s, ST_Expand(ST_Transform(p.geom, 9214), 1)) h "
            f"WHERE ST_Intersects(h.geom, ST_Transform(p.geom, 9214)) AND {' AND '.join(conds)} "
            "GROUP BY 1, 2", [size, *args]).fetchall()
    return {(i, j): n for i, j, n in rows}


@pytest.mark.parametrize("params", [
    {"size": 1000},
    {"size": 500, "from": "2023-03-15", "to": "2025-10-10"},
    {"size": 2000, "from": "2024-01-01", "to": "2024-12-31", "category": "public_order"},
    {"size": 500, "to": "2024-06-20", "category": "waste"},
    {"size": 5000, "from": "2025-05-05", "to": "2025-05-25"},
])
def test_hexbins_equal_a_recount(demo: TestClient, demo_settings: Settings, params: dict
                                 ) -> None:
    with psycopg.connect(demo_settings.dsn) as conn:
        ward = conn.execute("SELECT ward_code FROM incidents GROUP BY 1 ORDER BY count(*) DESC "
                            "LIMIT 1").fetchone()[0]
    for extra in ({}, {"ward": ward}):
        p = {**params, **extra}
        got = _hex_counts(demo, p)
        assert got and got == _hex_recount(demo_settings.dsn, p["size"], p), p


@pytest.mark.parametrize(("category", "size"), [("waste", 1000), ("public_order", 500)])
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
