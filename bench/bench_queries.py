"""Benchmark: planners' queries over HTTP (``whats-here`` and ``intersects``) at 8 connections
against ``huegis serve --workers 2`` on the demo with ``--rows`` parcels.

Run with ``.venv/bin/python bench/bench_queries.py --rows 1000000`` (small check:
``--rows 20000 --requests 500``); see ``bench/README.md``. Prints p50/p95/p99 latency and
throughput per query and writes ``bench/results/bench_queries_<rows>.md``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from bench.common import free_port  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def load(url: str, var_dir: Path, rows: int, seed: int) -> None:
    """Migrate the new database and load the demo with ``rows`` parcels (not timed)."""
    import psycopg

    from gis import db
    from gis.demo import DemoSize, load_demo
    from gis.settings import Settings

    db.migrate(url)
    settings = Settings(database_url=url, var_dir=var_dir)
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        load_demo(conn, settings, DemoSize(parcels=rows, construction=max(rows // 100, 1000),
                                           incidents=1000, seed=seed))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(f"demo with {rows:,} parcels loaded in {time.perf_counter() - started:.0f} s")


def sample_points(url: str, n: int, seed: int) -> list[tuple[float, float]]:
    """``n`` points inside random parcels (so inside Huế, where planners click)."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("SELECT setseed(%s)", (seed / 1000,))
        return conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM "
            "land_parcels ORDER BY random() LIMIT %s) s", (n,)).fetchall()


def serve(url: str, var_dir: Path, workers: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "HUEGIS_DATABASE_URL": url, "HUEGIS_VAR_DIR": str(var_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port),
                             "--workers", str(workers)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return proc, port
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError("huegis serve did not start")


Request = Callable[[int], tuple[str, str, bytes | None]]


def run(port: int, make: Request, total: int, connections: int) -> dict:
    """``total`` requests over ``connections`` keep-alive connections (one thread each)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            method, path, body = make(i)
            headers = {"Content-Type": "application/json"} if body else {}
            t = time.perf_counter()
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            mine.append(time.perf_counter() - t)
            if resp.status != 200:
                with lock:
                    errors.append(f"{resp.status} {data[:200]!r}")
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return {"requests": len(latencies), "errors": len(errors), "first_error": errors[:1],
            "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99),
            "throughput": len(latencies) / elapsed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="demo parcels")
    ap.add_argument("--requests", type=int, default=4000, help="requests per query")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2, help="huegis serve workers")
    ap.add_argument("--seed", type=int, default=46)
    ap.add_argument("--database", help="use this already loaded database (not dropped)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = ap.parse_args()

    import tempfile
    from contextlib import nullcontext

    from gis import db
    from gis.settings import Settings

    settings = Settings()
    server = (db.with_database(settings.database_url, "postgres") if settings.database_url
              else settings.managed_url("postgres"))
    if settings.uses_managed_cluster:
        db.ensure_ready(settings)
    var_dir = Path(tempfile.mkdtemp(prefix="huegis-bench-queries-"))
    scratch = (nullcontext(args.database) if args.database
               else db.scratch_database(server, "huegis_bench_queries", keep=args.keep))
    with scratch as url:
        if args.keep:
            print(f"keeping database {db.redact(url)} and rasters in {var_dir}")
        if not args.database:
            load(url, var_dir, args.rows, args.seed)
        else:  # an existing demo: its rasters are wherever raster_datasets says
            var_dir = settings.var_dir
        pts = sample_points(url, 2000, args.seed)
        rnd = random.Random(args.seed)

        def whats_here(i: int) -> tuple[str, str, None]:
            lon, lat = pts[i % len(pts)]
            return "GET", f"/query/whats-here?lon={lon:.7f}&lat={lat:.7f}", None

        def intersects(i: int) -> tuple[str, str, bytes]:
            lon, lat = pts[rnd.randrange(len(pts))]
            d = 0.0015  # ~ 300 m square
            ring = [[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d],
                    [lon - d, lat + d], [lon - d, lat - d]]
            body = json.dumps({"collection": "parcels",
                               "geometry": {"type": "Polygon", "coordinates": [ring]}})
            return "POST", "/query/intersects?limit=100", body.encode()

        proc, port = serve(url, var_dir, args.workers)
        try:
            run(port, whats_here, 200, args.connections)  # warm-up: pools, rasters, caches
            results = {"whats-here": run(port, whats_here, args.requests, args.connections),
                       "intersects (300 m square, limit=100)": run(
                           port, intersects, max(args.requests // 4, 100), args.connections)}
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            if not args.database and not args.keep:
                shutil.rmtree(var_dir, ignore_errors=True)  # the demo's rasters
    lines = [f"# bench_queries: {args.rows:,} parcels, {args.connections} connections, "
             f"{args.workers} workers",
             "", f"{platform.node()} · {os.cpu_count()} CPUs · Python "
             f"{platform.python_version()} · {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             "", "| query | requests | errors | p50 ms | p95 ms | p99 ms | req/s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['requests']:,} | {r['errors']} | {r['p50_ms']:.1f} | "
                     f"{r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['throughput']:.0f} |")
        if r["first_error"]:
            lines.append(f"\nfirst error: {r['first_error'][0]}")
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"bench_queries_{args.rows}.md").write_text(text)


if __name__ == "__main__":
    main()
