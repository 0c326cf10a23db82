"""Incident service benchmark: Open311 submissions per second (8 connections, a real
``huegis serve --workers 2``), live-feed latency (p95) and dashboard timings, on a scratch
database holding the demo with ``--incidents N`` reports.

    .venv/bin/python bench/bench_incidents.py --incidents 20000 --seconds 10     # small check
    .venv/bin/python bench/bench_incidents.py --incidents 1000000 --seconds 30   # full size
    .venv/bin/python bench/bench_incidents.py --database URL --incidents 1000000  # loaded already

Each submission goes through everything a real one does: form parsing, validation, routing
(point in ward), the SLA due date, the duplicate suggestion, the report and its first event
committed in one transaction, NOTIFY. Results go to ``bench/results/bench_incidents_<N>.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import start_huegis  # noqa: E402
from gis import db  # noqa: E402
from gis.settings import Settings  # noqa: E402

RESULTS = ROOT / "bench" / "results"
GROUPS = (None, "ward", "category", "day", "week", "month", "status", "channel")


def _load(url: str, settings: Settings, incidents: int) -> list[tuple[float, float]]:
    from gis.demo import DemoSize, load_demo

    db.migrate(url)
    with psycopg.connect(url) as conn:
        t0 = time.perf_counter()
        load_demo(conn, settings, DemoSize(parcels=5_000, construction=500,
                                           incidents=incidents))
        conn.execute("REFRESH MATERIALIZED VIEW gazetteer_streets")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE incidents")
        print(f"demo with {incidents:,} incidents loaded in {time.perf_counter() - t0:.1f} s")
    return _points(url)


def _points(url: str) -> list[tuple[float, float]]:
    with psycopg.connect(url) as conn:
        pts = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM incidents "
                           "TABLESAMPLE SYSTEM (1) REPEATABLE (8) LIMIT 2000").fetchall()
    return [(float(x), float(y)) for x, y in pts]


def _form(points: list, rng: random.Random) -> dict:
    lon, lat = rng.choice(points)
    return {"service_code": rng.choice(("roads", "lighting", "waste", "drainage", "trees",
                                        "construction", "noise", "public_order")),
            "lat": f"{lat + rng.uniform(-2e-4, 2e-4):.6f}",
            "long": f"{lon + rng.uniform(-2e-4, 2e-4):.6f}",
            "description": "Benchmark report", "email": "bench@example.vn"}


async def _submissions(base: str, points: list, seconds: float, connections: int) -> dict:
    rng = random.Random(8)
    done, errors, lat = 0, 0, []
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        async def worker() -> None:
            nonlocal done, errors
            while time.monotonic() < stop:
                t = time.perf_counter()
                r = await client.post("/open311/v2/requests.json", data=_form(points, rng))
                lat.append(time.perf_counter() - t)
                if r.status_code == 201:
                    done += 1
                else:
                    errors += 1
        t0 = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(connections)])
        elapsed = time.perf_counter() - t0
    lat.sort()
    return {"client": "httpx", "reports": done, "errors": errors, "seconds": round(elapsed, 2),
            "per_second": round(done / elapsed, 1),
            "p50_ms": round(1000 * lat[len(lat) // 2], 1) if lat else None,
            "p95_ms": round(1000 * lat[int(len(lat) * 0.95)], 1) if lat else None}


_WRK_SCRIPT = """
local points = {%s}
local codes = {"roads", "lighting", "waste", "drainage", "trees", "construction", "noise",
               "public_order"}
math.randomseed(8)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
request = function()
  local p = points[math.random(#points)]
  local body = string.format("service_code=%%s&lat=%%.6f&long=%%.6f"
    .. "&description=Benchmark+report&email=bench@example.vn",
    codes[math.random(#codes)], p[2] + (math.random() - 0.5) * 4e-4,
    p[1] + (math.random() - 0.5) * 4e-4)
  return wrk.format(nil, "/open311/v2/requests.json", nil, body)
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%.1f %%.1f %%.1f %%.1f\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout, summary.duration,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def _submissions_wrk(base: str, points: list, seconds: float, connections: int) -> dict:
    """The same submissions driven by wrk (a C client, one thread): the script's own cost
    stays out of the two cores the service runs on."""
    lua = RESULTS / "bench_incidents_submit.lua"
    lua.write_text(_WRK_SCRIPT % ", ".join(f"{{{x:.6f}, {y:.6f}}}" for x, y in points))
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:.0f}s", "-s",
                          str(lua), base], capture_output=True, text=True, check=True).stdout
    n, errors, us, p50, p95, p99, mx = next(
        line.split()[1:] for line in out.splitlines() if line.startswith("RESULT"))
    elapsed = int(us) / 1e6
    return {"client": "wrk", "reports": int(n) - int(errors), "errors": int(errors),
            "seconds": round(elapsed, 2), "per_second": round((int(n) - int(errors)) / elapsed, 1),
            "p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99),
            "max_ms": float(mx)}


def _feed_latency(base: str, points: list, n: int) -> dict:
    """Seconds from sending a report to its event reaching an SSE subscriber (an upper bound
    of commit-to-client: it includes the request itself)."""
    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    ready = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", f"{base}/incidents/events", params={"limit": n},
                          timeout=60) as r:
            for line in r.iter_lines():
                if line.startswith("retry:"):
                    ready.set()
                elif line.startswith("data: "):
                    got[json.loads(line[6:])["ref"]] = time.perf_counter()

    th = threading.Thread(target=listen, daemon=True)
    th.start()
    ready.wait(10)
    rng = random.Random(9)
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(n):
            t = time.perf_counter()
            r = client.post("/open311/v2/requests.json", data=_form(points, rng))
            sent[r.json()[0]["service_request_id"]] = t
            time.sleep(0.02)
    th.join(30)
    lat = sorted(got[k] - sent[k] for k in sent if k in got)
    return {"events": len(lat), "of": n,
            "p50_ms": round(1000 * statistics.median(lat), 1) if lat else None,
            "p95_ms": round(1000 * lat[int(len(lat) * 0.95) - 1], 1) if lat else None}


def _queries(ward: str, ref: str) -> list[tuple[str, str, dict]]:
    """Every figure the dashboard and the public API answer from the reports, with and
    without each filter, and the Open311 reads (issue 10: nothing over 1 s)."""
    cut = {"from": "2023-03-15", "to": "2025-10-10"}  # years, months and days at the edges
    out = []
    for g in GROUPS:
        by = {"group_by": g} if g else {}
        out += [(f"figures {g or 'all'}", "/stats/incidents", by),
                (f"figures {g or 'all'}, ward", "/stats/incidents", {**by, "ward": ward}),
                (f"figures {g or 'all'}, category", "/stats/incidents",
                 {**by, "category": "drainage"}),
                (f"figures {g or 'all'}, 2023-03-15..2025-10-10", "/stats/incidents",
                 {**by, **cut})]
    out += [("figures month, ward+category+2025", "/stats/incidents",
             {"from": "2025-01-01", "to": "2025-12-31", "ward": ward, "category": "drainage",
              "group_by": "month"}),
            ("figures channel, ward+category, cut", "/stats/incidents",
             {**cut, "ward": ward, "category": "drainage", "group_by": "channel"}),
            ("figures ward, median=false", "/stats/incidents",
             {"group_by": "ward", "median": "false"})]
    for size in (500, 1000, 2000, 5000):
        out.append((f"hexbins {size} m, all", "/stats/incidents/hexbins", {"size": size}))
    out += [("hexbins 500 m, 2025", "/stats/incidents/hexbins",
             {"size": 500, "from": "2025-01-01", "to": "2025-12-31"}),
            ("hexbins 500 m, cut", "/stats/incidents/hexbins", {"size": 500, **cut}),
            ("hexbins 500 m, ward", "/stats/incidents/hexbins", {"size": 500, "ward": ward}),
            ("hexbins 500 m, public_order, cut", "/stats/incidents/hexbins",
             {"size": 500, "category": "public_order", **cut})]
    o = "/open311/v2"
    out += [("open311 services", f"{o}/services.json", {}),
            ("open311 requests (last 90 days)", f"{o}/requests.json", {}),
            ("open311 requests.xml (last 90 days)", f"{o}/requests.xml", {}),
            ("open311 requests 2024-Q1 noise closed", f"{o}/requests.json",
             {"start_date": "2024-01-01T00:00:00+07:00", "end_date": "2024-03-31T00:00:00+07:00",
              "service_code": "noise", "status": "closed"}),
            ("open311 requests page 5", f"{o}/requests.json", {"page": 5, "page_size": 100}),
            ("open311 request by id", f"{o}/requests/{ref}.json", {})]
    return out


def _pct(sorted_ms: list[float], q: float) -> float:
    return round(sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * q))], 1)


def _stats_timings(base: str, repeat: int, ward: str, ref: str) -> dict:
    out = {}
    with httpx.Client(base_url=base, timeout=120) as client:
        for name, path, params in _queries(ward, ref):
            client.get(path, params=params)  # warm
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                r = client.get(path, params=params)
                times.append(1000 * (time.perf_counter() - t))
                assert r.status_code == 200, (name, r.text)
            times.sort()
            out[name] = {"p50": _pct(times, 0.5), "p95": _pct(times, 0.95),
                         "p99": _pct(times, 0.99), "max": round(times[-1], 1)}
    return out


def _sample(url: str) -> tuple[str, str]:
    """The ward with most reports, and one report's reference."""
    with psycopg.connect(url) as conn:
        ward = conn.execute("SELECT ward_code FROM incident_rollup_month WHERE dim = 'all' "
                            "GROUP BY 1 ORDER BY sum(n) DESC LIMIT 1").fetchone()[0]
        ref = conn.execute("SELECT ref FROM incidents WHERE id = (SELECT max(id) / 3 FROM "
                           "incidents)").fetchone()[0]
    return ward, ref


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--incidents", type=int, default=20_000)
    ap.add_argument("--database", help="an existing database with the demo loaded (and "
                    "migrated): skip the load, keep the database (it gains the submissions)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--feed-events", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--client", choices=("wrk", "httpx"),
                    default="wrk" if shutil.which("wrk") else "httpx",
                    help="submissions client (wrk, a C client, keeps the script's own cost "
                    "off the service's cores)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = ap.parse_args()
    base_settings = Settings()
    server_url = os.environ.get("HUEGIS_TEST_DATABASE_URL") or db.ensure_ready(
        base_settings) and base_settings.managed_url("postgres")
    RESULTS.mkdir(exist_ok=True)
    scratch = (contextlib.nullcontext(args.database) if args.database else
               db.scratch_database(server_url, "huegis_bench_incidents", keep=args.keep))
    with scratch as url:
        var = RESULTS / f"incidents_var_{args.incidents}"
        settings = Settings(database_url=url, var_dir=var)
        points = _points(url) if args.database else _load(url, settings, args.incidents)
        ward, ref = _sample(url)
        proc, base = start_huegis(url, var, args.workers, settle=2)
        try:
            load = [os.getloadavg()[0]]
            stats = _stats_timings(base, args.repeat, ward, ref)
            load.append(os.getloadavg()[0])
            sub = (_submissions_wrk(base, points, args.seconds, args.connections)
                   if args.client == "wrk" else
                   asyncio.run(_submissions(base, points, args.seconds, args.connections)))
            load.append(os.getloadavg()[0])
            fd = _feed_latency(base, points, args.feed_events)
        finally:
            proc.terminate()
            proc.wait(15)
    lines = [f"# Incidents benchmark, {args.incidents:,} incidents",
             "", f"`{' '.join(sys.argv)}`", "",
             f"Load average (1 min) before the figures, after them, after the submissions: "
             f"{', '.join(f'{x:.1f}' for x in load)}", "",
             f"- Open311 submissions ({sub['client']}), {args.connections} connections, "
             f"{args.workers} workers: **{sub['per_second']}/s** ({sub['reports']} in "
             f"{sub['seconds']} s, {sub['errors']} errors; p50 {sub['p50_ms']} ms, "
             f"p95 {sub['p95_ms']} ms)",
             f"- Live feed, send → SSE client: p50 {fd['p50_ms']} ms, **p95 {fd['p95_ms']} ms** "
             f"({fd['events']}/{fd['of']} events)", "",
             f"Figures and public reads, {args.repeat} requests each, one at a time, "
             "client-side ms:", "", "| request | p50 | p95 | p99 | max |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {k} | {v['p50']} | {v['p95']} | {v['p99']} | {v['max']} |"
              for k, v in stats.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    (RESULTS / f"bench_incidents_{args.incidents}.md").write_text(text)


if __name__ == "__main__":
    main()
