"""Benchmark: planners' queries over HTTP (``whats-here`` and ``intersects``) at 8 connections
against ``huegis serve --workers 2`` on the demo with ``--rows`` parcels.

Run with ``.venv/bin/python bench/bench_queries.py --rows 1000000`` (small check:
``--rows 20000 --seconds 5 --rate-seconds 5``); see ``bench/README.md``. Closed loop (each
connection sends its next request when the answer is in) with wrk when installed, then
what's-here at fixed rates (open loop, a lean asyncio client). Prints p50/p95/p99 latency
and throughput per run and writes ``bench/results/bench_queries_<rows>.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from bench.common import start_huegis  # noqa: E402

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


Request = tuple[str, str, bytes | None]  # method, path, body

WRK_SCRIPT = r"""
local requests = {}
for line in io.lines(os.getenv("HUEGIS_BENCH_REQUESTS")) do
  local method, path, body = line:match("^(%S+)\t(%S+)\t?(.*)$")
  if body == "" then body = nil end
  requests[#requests + 1] = {method, path, body}
end
local i = 0
request = function()
  i = i + 1
  local r = requests[(i % #requests) + 1]
  local headers = r[3] and {["Content-Type"] = "application/json"} or {}
  return wrk.format(r[1], r[2], headers, r[3])
end
-- no response() callback: wrk counts HTTP errors (status > 399) in summary.errors.status
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('HUEGIS {"requests": %d, "errors": %d, "seconds": %f, '
    .. '"p50_ms": %f, "p95_ms": %f, "p99_ms": %f}\n', summary.requests,
    e.status + e.connect + e.read + e.write + e.timeout, summary.duration / 1e6,
    latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3))
end
"""


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (Linux ``/proc``; gone: 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its children (the uvicorn workers)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return [pid, *kids]


def cpu_per_request(url: str, server_pid: int, run: Callable[[], dict]) -> dict:
    """``run()``'s result with the CPU milliseconds per request spent by the server (uvicorn
    workers), its PostgreSQL backends and the load generator: where the 2 cores went."""
    import psycopg

    with psycopg.connect(url) as conn:
        backends = [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'huegis-api'").fetchall()]
    server = _process_tree(server_pid)
    s0, b0, m0 = _cpu_seconds(server), _cpu_seconds(backends), _machine_busy()
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p0, t0 = time.process_time(), time.monotonic()
    result = run()
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime
              + time.process_time() - p0)
    ours = (_cpu_seconds(server) - s0, _cpu_seconds(backends) - b0, client)
    n = max(result["requests"], 1) / 1000
    return {**result, "cpu_ms": tuple(v / n for v in ours),
            "others_cores": max(_machine_busy() - m0 - sum(ours), 0) / (time.monotonic() - t0)}


def _machine_busy() -> float:
    """CPU seconds the whole machine has been busy (``/proc/stat``: all but idle and
    iowait), to tell what the rest of the machine took during a run."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def run_wrk(port: int, requests: list[Request], seconds: float, connections: int,
            workdir: Path) -> dict:
    """Closed loop: ``connections`` keep-alive connections, each sending its next request as
    soon as the answer is in, for ``seconds``, with wrk (C, one thread: the load generator
    takes as little as possible of the 2 cores it shares with the server)."""
    lines = workdir / "requests.tsv"
    lines.write_text("".join(f"{m}\t{p}\t{(b or b'').decode()}\n" for m, p, b in requests))
    script = workdir / "bench.lua"
    script.write_text(WRK_SCRIPT)
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout",
                          "10s", "-s", str(script), f"http://127.0.0.1:{port}"],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "HUEGIS_BENCH_REQUESTS": str(lines)})
    line = next((x for x in out.stdout.splitlines() if x.startswith("HUEGIS ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary:\n{out.stdout}\n{out.stderr}")
    r = json.loads(line[len("HUEGIS "):])
    return {**r, "throughput": r["requests"] / r["seconds"], "first_error": [],
            "client": "wrk"}


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: Request) -> int:
    """One HTTP/1.1 keep-alive request; returns the status (the body is read and dropped)."""
    method, path, body = request
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    writer.write(head.encode() + b"\r\n" + (body or b""))
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status_line.split()[1])


def run_rate(port: int, requests: list[Request], rate: float, seconds: float,
             connections: int = 32) -> dict:
    """Open loop at a fixed rate: request i is due at ``i / rate`` seconds whatever happened
    before, and its latency counts from then (a late answer delays nothing else, so slow
    moments are not hidden: no coordinated omission). A lean asyncio client, at most
    ``connections`` requests in flight."""

    async def main() -> dict:
        idle: asyncio.Queue = asyncio.Queue()
        for _ in range(connections):
            idle.put_nowait(await asyncio.open_connection("127.0.0.1", port))
        latencies: list[float] = []
        errors: list[str] = []
        total = int(rate * seconds)
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05

        async def one(i: int) -> None:
            due = start + i / rate
            conn = await idle.get()
            try:
                status = await _exchange(*conn, requests[i % len(requests)])
                latencies.append(loop.time() - due)
                if status != 200:
                    errors.append(str(status))
            finally:
                idle.put_nowait(conn)

        tasks = []
        for i in range(total):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i)))
        await asyncio.gather(*tasks)
        elapsed = loop.time() - start
        while not idle.empty():
            idle.get_nowait()[1].close()
        return _summary(latencies, errors, elapsed, client=f"asyncio, {rate:g} req/s offered")

    return asyncio.run(main())


def _summary(latencies: list[float], errors: list[str], elapsed: float, client: str) -> dict:
    latencies = sorted(latencies)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return {"requests": len(latencies), "errors": len(errors), "first_error": errors[:1],
            "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99),
            "throughput": len(latencies) / elapsed, "client": client}


def run_closed(port: int, requests: list[Request], seconds: float, connections: int) -> dict:
    """Closed loop with the asyncio client (when wrk is not installed)."""

    async def main() -> dict:
        loop = asyncio.get_running_loop()
        latencies: list[float] = []
        errors: list[str] = []
        counter = iter(range(1 << 62))
        end = loop.time() + seconds

        async def worker() -> None:
            conn = await asyncio.open_connection("127.0.0.1", port)
            while loop.time() < end:
                t = loop.time()
                status = await _exchange(*conn, requests[next(counter) % len(requests)])
                latencies.append(loop.time() - t)
                if status != 200:
                    errors.append(str(status))
            conn[1].close()

        started = loop.time()
        await asyncio.gather(*(worker() for _ in range(connections)))
        return _summary(latencies, errors, loop.time() - started, client="asyncio")

    return asyncio.run(main())


def main() -> None:  # noqa: C901 (one run, step by step)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="demo parcels")
    ap.add_argument("--seconds", type=float, default=30, help="length of each closed-loop run")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--rates", default="250,500",
                    help="fixed request rates (req/s) for the open-loop what's-here runs")
    ap.add_argument("--rate-seconds", type=float, default=20)
    ap.add_argument("--client", choices=("wrk", "asyncio"),
                    default="wrk" if shutil.which("wrk") else "asyncio",
                    help="closed-loop load generator (default: wrk when installed)")
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
    # An existing demo's rasters are wherever its raster_datasets says.
    var_dir = (settings.var_dir if args.database
               else Path(tempfile.mkdtemp(prefix="huegis-bench-queries-")))
    scratch = (nullcontext(args.database) if args.database
               else db.scratch_database(server, "huegis_bench_queries", keep=args.keep))
    load_before = os.getloadavg()
    with scratch as url:
        if args.keep:
            print(f"keeping database {db.redact(url)} and rasters in {var_dir}")
        if not args.database:
            load(url, var_dir, args.rows, args.seed)
        pts = sample_points(url, 2000, args.seed)
        rnd = random.Random(args.seed)
        whats_here = [("GET", f"/query/whats-here?lon={lon:.7f}&lat={lat:.7f}", None)
                      for lon, lat in pts]
        intersects = []
        for _ in range(len(pts)):
            lon, lat = pts[rnd.randrange(len(pts))]
            d = 0.0015  # ~ 300 m square
            ring = [[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d],
                    [lon - d, lat + d], [lon - d, lat - d]]
            intersects.append(("POST", "/query/intersects?limit=100", json.dumps(
                {"collection": "parcels",
                 "geometry": {"type": "Polygon", "coordinates": [ring]}}).encode()))

        def closed(requests: list[Request], seconds: float) -> dict:
            if args.client == "wrk":
                return run_wrk(port, requests, seconds, args.connections, work)
            return run_closed(port, requests, seconds, args.connections)

        work = Path(tempfile.mkdtemp(prefix="huegis-bench-wrk-"))  # wrk's script, requests
        proc, base = start_huegis(url, var_dir, args.workers)
        port = int(base.rsplit(":", 1)[1])
        results: dict[str, dict] = {}
        try:
            closed(whats_here, 5)  # warm-up: pools, prepared statements, rasters, caches
            load_before = os.getloadavg()
            results["whats-here"] = cpu_per_request(
                url, proc.pid, lambda: closed(whats_here, args.seconds))
            for rate in (float(r) for r in args.rates.split(",") if r):
                results[f"whats-here at {rate:g} req/s (open loop)"] = cpu_per_request(
                    url, proc.pid, lambda r=rate: run_rate(port, whats_here, r,
                                                           args.rate_seconds))
            closed(intersects, 3)
            results["intersects (300 m square, limit=100)"] = cpu_per_request(
                url, proc.pid, lambda: closed(intersects, args.seconds))
            load_after = os.getloadavg()
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            shutil.rmtree(work, ignore_errors=True)
            if not args.database and not args.keep:
                shutil.rmtree(var_dir, ignore_errors=True)  # the demo's rasters
    lines = [f"# bench_queries: {args.rows:,} parcels, {args.connections} connections "
             f"(closed loop, {args.client}), {args.workers} workers",
             "", f"{platform.node()} · {os.cpu_count()} CPUs · Python "
             f"{platform.python_version()} · {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
             f" · load average {load_before[0]:.1f} before, {load_after[0]:.1f} after",
             "", "| query | client | requests | errors | p50 ms | p95 ms | p99 ms | req/s | "
             "CPU ms/request: server, PostgreSQL, client | cores used by other work |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['client']} | {r['requests']:,} | {r['errors']} | "
                     f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | "
                     f"{r['throughput']:.0f} | "
                     + ", ".join(f"{v:.2f}" for v in r["cpu_ms"])
                     + f" | {r['others_cores']:.2f} |")
        if r["first_error"]:
            lines.append(f"\nfirst error: {r['first_error'][0]}")
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"bench_queries_{args.rows}.md").write_text(text)


if __name__ == "__main__":
    main()
