"""Incident service benchmark: Open311 submissions per second (8 connections, a real
``huegis serve --workers 2``), live-feed latency (p95) and dashboard timings, on a scratch
database holding the demo with ``--incidents N`` reports.

    .venv/bin/python bench/bench_incidents.py --incidents 20000 --seconds 10     # small check
    .venv/bin/python bench/bench_incidents.py --incidents 1000000 --seconds 30   # full size

Each submission goes through everything a real one does: form parsing, validation, routing
(point in ward), the SLA due date, the duplicate suggestion, the report and its first event
committed in one transaction, NOTIFY. Results go to ``bench/results/bench_incidents_<N>.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
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

from bench.common import free_port  # noqa: E402
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
        pts = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM incidents "
                           "ORDER BY random() LIMIT 2000").fetchall()
    return [(float(x), float(y)) for x, y in pts]


def _serve(settings: Settings, workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "HUEGIS_DATABASE_URL": settings.dsn,
           "HUEGIS_VAR_DIR": str(settings.var_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port),
                             "--workers", str(workers)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start")


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
    return {"reports": done, "errors": errors, "seconds": round(elapsed, 2),
            "per_second": round(done / elapsed, 1),
            "p50_ms": round(1000 * lat[len(lat) // 2], 1) if lat else None,
            "p95_ms": round(1000 * lat[int(len(lat) * 0.95)], 1) if lat else None}


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


def _stats_timings(base: str, repeat: int) -> dict:
    out = {}
    with httpx.Client(base_url=base, timeout=120) as client:
        queries = [("figures" + (f" group_by={g}" if g else ""),
                    "/stats/incidents", {"group_by": g} if g else {}) for g in GROUPS]
        queries += [("figures group_by=ward, median=false", "/stats/incidents",
                     {"group_by": "ward", "median": "false"}),
                    ("figures group_by=month, median=false", "/stats/incidents",
                     {"group_by": "month", "median": "false"}),
                    ("figures ward+category+2025", "/stats/incidents",
                     {"from": "2025-01-01", "to": "2025-12-31", "category": "drainage",
                      "group_by": "month"}),
                    ("hexbins 500 m, 2025", "/stats/incidents/hexbins",
                     {"size": 500, "from": "2025-01-01", "to": "2025-12-31"}),
                    ("hexbins 1000 m, all", "/stats/incidents/hexbins", {"size": 1000})]
        for name, path, params in queries:
            client.get(path, params=params)  # warm
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                r = client.get(path, params=params)
                times.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text
            out[name] = round(1000 * statistics.median(times), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--incidents", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--feed-events", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = ap.parse_args()
    base_settings = Settings()
    server_url = os.environ.get("HUEGIS_TEST_DATABASE_URL") or db.ensure_ready(
        base_settings) and base_settings.managed_url("postgres")
    with db.scratch_database(server_url, "huegis_bench_incidents", keep=args.keep) as url:
        var = RESULTS / f"incidents_var_{args.incidents}"
        settings = Settings(database_url=url, var_dir=var)
        points = _load(url, settings, args.incidents)
        proc, base = _serve(settings, args.workers)
        try:
            stats = _stats_timings(base, args.repeat)
            sub = asyncio.run(_submissions(base, points, args.seconds, args.connections))
            fd = _feed_latency(base, points, args.feed_events)
        finally:
            proc.terminate()
            proc.wait(15)
    lines = [f"# Incidents benchmark, {args.incidents:,} incidents",
             "", f"`{' '.join(sys.argv)}`", "",
             f"- Open311 submissions, {args.connections} connections, {args.workers} workers: "
             f"**{sub['per_second']}/s** ({sub['reports']} in {sub['seconds']} s, "
             f"{sub['errors']} errors; p50 {sub['p50_ms']} ms, p95 {sub['p95_ms']} ms)",
             f"- Live feed, send → SSE client: p50 {fd['p50_ms']} ms, **p95 {fd['p95_ms']} ms** "
             f"({fd['events']}/{fd['of']} events)", "- Dashboard (median of "
             f"{args.repeat}, client-side, ms):"]
    lines += [f"  - {k}: {v}" for k, v in stats.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"bench_incidents_{args.incidents}.md").write_text(text)


if __name__ == "__main__":
    main()
