"""Benchmark: vector tiles of land parcels, Huế GIS next to tipg and the naive ST_AsMVT query;
the warm cache; nginx serving the disk cache next to plain nginx serving the same files.

Run with ``python bench/bench_tiles.py`` (1,000,000 parcels and incidents; a quick check:
``--rows 10000 --seconds 3``); see ``bench/README.md``. tipg is installed by this script in
``bench/.peers-venv`` (never in the project's venv); ``--no-peers`` skips it. The warm and
nginx runs use ``wrk`` when installed (Debian's package), else the Python client.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from bench.bench_features import (  # noqa: E402  (shared peer/server helpers)
    _db_parts,
    free_port,
    peers_venv,
    wait_http,
)

RESULTS = ROOT / "bench" / "results"
CENTRAL_HUE = (107.56, 16.44, 107.62, 16.48)  # tests/common.py CENTRAL_HUE_BBOX
ZOOMS = (14, 17)
PUBLIC = ("parcel_no", "map_sheet_no", "land_use", "area_m2", "zoning", "owner_type",
          "ward_code", "address", "source")


# ----------------------------------------------------------------------------- set-up
@contextmanager
def demo_database(rows: int, incidents: int, seed: int, keep: bool, var: Path
                  ) -> Iterator[str]:
    """A scratch database with the demo (``rows`` parcels); dropped unless ``keep``."""
    import psycopg

    from gis import db
    from gis.demo import DemoSize, load_demo
    from gis.settings import Settings

    server = os.environ.get("HUEGIS_DATABASE_URL") or Settings().managed_url("postgres")
    if "HUEGIS_DATABASE_URL" not in os.environ:
        from gis.cluster import Cluster

        Cluster(Settings()).up()
    with db.scratch_database(server, "huegis_bench_tiles", keep=keep) as url:
        db.migrate(url)
        t0 = time.perf_counter()
        with psycopg.connect(url) as conn:
            load_demo(conn, Settings(database_url=url, var_dir=var),
                      DemoSize(parcels=rows, construction=max(rows // 200, 10),
                               incidents=incidents, seed=seed))
        print(f"demo loaded ({rows} parcels, {incidents} incidents) in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        with psycopg.connect(url, autocommit=True) as conn:
            # A bulk load leaves the land-use blocks to a worker: build them now, untimed.
            conn.execute("SELECT huegis_tiles_rebuild() FROM tiles_state WHERE blocks_dirty")
            conn.execute("VACUUM ANALYZE")
        yield url
        if keep:
            print(f"kept database: {db.redact(url)}")


def tile_list(zooms: tuple[int, int] = ZOOMS, bbox=CENTRAL_HUE) -> list[tuple[int, int, int]]:
    """Every WebMercatorQuad tile of ``bbox`` at the zooms, zoom by zoom."""
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    return [(t.z, t.x, t.y) for t in tms.tiles(*bbox, list(range(zooms[0], zooms[1] + 1)))]



def start_huegis(url: str, var_dir: Path, workers: int) -> tuple[subprocess.Popen, str]:
    # The extent scans of start-up finished before the cold run (2 s: one scan per worker).
    return common.start_huegis(url, var_dir, workers, settle=2.0)  # both workers LISTENing


def start_tipg(url: str, workers: int) -> tuple[subprocess.Popen, str]:
    bin_dir, port, d = peers_venv(), free_port(), _db_parts(url)
    # A socket directory as the host, percent-encoded (asyncpg decodes it): the managed
    # cluster listens on no TCP port.
    auth = urllib.parse.quote(d["user"]) + (":" + urllib.parse.quote(d["password"])
                                            if d["password"] else "")
    env = {**os.environ, "TIPG_DB_SCHEMAS": '["public"]', "DATABASE_URL":
           f"postgresql://{auth}@{urllib.parse.quote(d['host'], safe='')}:{d['port']}/"
           f"{d['dbname']}", "TIPG_DB_TABLES": '["public.land_parcels"]',
           "TIPG_MAX_FEATURES_PER_TILE": "20000"}
    proc = subprocess.Popen([str(bin_dir / "uvicorn"), "tipg.main:app", "--port", str(port),
                             "--workers", str(workers), "--log-level", "warning"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/collections", proc)
    return proc, base


def start_nginx(conf_text: str, prefix: Path) -> subprocess.Popen:
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    conf = prefix / "nginx.conf"
    conf.write_text(conf_text)
    proc = subprocess.Popen([exe, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c",
                             str(conf), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc


def nginx_front(prefix: Path, port: int, upstream: str, cache_dir: Path) -> str:
    text = (ROOT / "deploy" / "nginx.conf").read_text()
    user = "user root;" if os.geteuid() == 0 else ""
    for k, v in (("USER", user), ("PREFIX", str(prefix)), ("LISTEN", f"127.0.0.1:{port}"),
                 ("UPSTREAM", upstream), ("CACHE_DIR", str(cache_dir))):
        text = text.replace(f"@{k}@", v)
    return text


def nginx_plain(prefix: Path, port: int, cache_dir: Path) -> str:
    """Plain nginx: the same files, as static files, nothing else."""
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""{user}
worker_processes auto;
pid {prefix}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
    client_body_temp_path {prefix}/cb; proxy_temp_path {prefix}/px;
    fastcgi_temp_path {prefix}/fc; uwsgi_temp_path {prefix}/uw; scgi_temp_path {prefix}/sc;
    types {{ application/vnd.mapbox-vector-tile mvt; }}
    server {{ listen 127.0.0.1:{port} reuseport; root {cache_dir}; }}
}}
"""


# ----------------------------------------------------------------------------- load
class RawHTTP:
    """A minimal keep-alive HTTP/1.1 GET client on a raw socket: reads Content-Length bodies
    with large ``recv_into`` calls (``http.client`` needs ~8 ms for a 120 KB tile, curl 1)."""

    def __init__(self, host: str, port: int) -> None:
        self.addr = (host, port)
        self.buf = bytearray(1 << 20)
        self.sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        s = socket.create_connection(self.addr, timeout=120)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.pending = s, b""
        return s

    def get(self, path: str) -> int:
        s = self.sock or self._connect()
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        data = self.pending
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        view, got = memoryview(self.buf), len(rest)
        while got < length:
            n = s.recv_into(view[: min(len(self.buf), length - got)])
            if not n:
                raise ConnectionError("closed")
            got += n
        self.pending = rest[length:] if len(rest) > length else b""
        return status

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def run_paths(base: str, paths: list[str], connections: int, seconds: float | None = None
              ) -> dict:
    """``connections`` keep-alive clients; each path once (cold) or, with ``seconds``, the
    paths round and round for that long (warm). Latency percentiles (ms), throughput."""
    u = urllib.parse.urlsplit(base)
    work: queue.Queue = queue.Queue()
    for p in paths:
        work.put(p)
    lat: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop = time.perf_counter() + (seconds or 0)

    def worker(i: int) -> None:
        conn = RawHTTP(u.hostname, u.port)
        mine, seen, k = [], {}, i
        while True:
            if seconds is None:
                try:
                    path = work.get_nowait()
                except queue.Empty:
                    break
            else:
                if time.perf_counter() >= stop:
                    break
                path, k = paths[k % len(paths)], k + connections
            t0 = time.perf_counter()
            try:
                status = conn.get(path)
                seen[status] = seen.get(status, 0) + 1
            except (OSError, ValueError):
                seen[0] = seen.get(0, 0) + 1
                conn.close()
                continue
            mine.append(time.perf_counter() - t0)
        conn.close()
        with lock:
            lat.extend(mine)
            for s, n in seen.items():
                statuses[s] = statuses.get(s, 0) + n

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return _stats(lat, time.perf_counter() - started, statuses)


WRK_SCRIPT = """
local paths = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  i = tonumber(args[2]) or 0
end
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format("WRK %d %d %d %d %d %d %d %d\\n", summary.requests,
    summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), summary.errors.status, summary.errors.connect +
    summary.errors.read + summary.errors.write, summary.errors.timeout))
end
"""


def run_wrk(base: str, paths: list[str], connections: int, seconds: float) -> dict | None:
    """The paths round and round for ``seconds`` with ``wrk`` (one thread: a C load
    generator leaves the cores to the servers it measures); ``None`` without wrk."""
    exe = shutil.which("wrk")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "paths.txt").write_text("\n".join(paths) + "\n")
        (Path(tmp) / "cycle.lua").write_text(WRK_SCRIPT)
        out = subprocess.run([exe, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                              "--timeout", "10s", "-s", str(Path(tmp) / "cycle.lua"), base,
                              "--", str(Path(tmp) / "paths.txt")],
                             capture_output=True, text=True, timeout=seconds + 60, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRK "))
    n, dur_us, p50, p95, p99, bad, sock, timeouts = map(int, line.split()[1:])
    return {"requests": n, "rps": n / (dur_us / 1e6), "p50": p50 / 1000, "p95": p95 / 1000,
            "p99": p99 / 1000, "statuses": {"non-2xx/3xx": bad, "socket errors": sock,
                                            "timeouts": timeouts}}


def run_warm(base: str, paths: list[str], connections: int, seconds: float) -> dict:
    """A warm run: wrk when installed (``apt-get install wrk``), else the Python client."""
    r = run_wrk(base, paths, connections, seconds)
    if r is None:
        r = run_paths(base, paths, connections, seconds)
        r["client"] = "python threads"
    else:
        r["client"] = "wrk -t1"
    return r


def _stats(lat: list[float], elapsed: float, statuses: dict) -> dict:
    lat.sort()

    def pct(p: float) -> float:
        return 1000 * lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")

    return {"requests": len(lat), "rps": len(lat) / elapsed, "p50": pct(0.50),
            "p95": pct(0.95), "p99": pct(0.99), "statuses": statuses}


def run_naive(url: str, tiles: list[tuple[int, int, int]], connections: int) -> dict:
    """The naive query (per-row ST_Transform) over ``connections`` database connections."""
    import asyncpg

    from gis.tiles.mvt import naive_mvt_sql
    from layers import VECTOR_LAYERS

    sql = naive_mvt_sql(VECTOR_LAYERS["parcels"])

    async def main() -> dict:
        pool = await asyncpg.create_pool(url, min_size=connections, max_size=connections)
        todo: asyncio.Queue = asyncio.Queue()
        for t in tiles:
            todo.put_nowait(t)
        lat: list[float] = []

        async def worker() -> None:
            async with pool.acquire() as conn:
                while not todo.empty():
                    z, x, y = todo.get_nowait()
                    t0 = time.perf_counter()
                    await conn.fetchval(sql, z, x, y)
                    lat.append(time.perf_counter() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
        await pool.close()
        return {**_stats(lat, elapsed, {200: len(lat)}), "client": "asyncpg, no HTTP"}

    return asyncio.run(main())


# ----------------------------------------------------------------------------- main
def main() -> None:  # noqa: C901 (one scenario after another)
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000, help="parcels in the demo")
    ap.add_argument("--incidents", type=int, default=None, help="default: --rows")
    ap.add_argument("--seed", type=int, default=46)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each warm run")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--no-nginx", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the database")
    ap.add_argument("--url", help="use this already loaded database instead")
    args = ap.parse_args()
    tiles = tile_list()
    ours = [f"/collections/parcels/tiles/WebMercatorQuad/{z}/{y}/{x}" for z, x, y in tiles]
    rows: list[tuple[str, dict]] = []

    def note(name: str, r: dict) -> None:
        r["load"] = os.getloadavg()[0]  # 1-minute load average at the end of the run
        rows.append((name, r))
        print(f"{name:<44} {r['rps']:>9.1f} tiles/s  p50 {r['p50']:7.1f}  p95 {r['p95']:7.1f}"
              f"  p99 {r['p99']:7.1f} ms  {r['statuses']}  load {r['load']:.1f}"
              f"  {r.get('client', '')}", flush=True)

    with tempfile.TemporaryDirectory() as tmp, (
            demo_database(args.rows, args.incidents or args.rows, args.seed, args.keep,
                          Path(tmp) / "demo") if not args.url else _given(args.url)) as url:
        print(f"{len(tiles)} distinct tiles z{ZOOMS[0]}–{ZOOMS[1]} over central Huế, "
              f"{args.connections} connections, {args.workers} workers")
        note("naive ST_AsMVT (8 DB connections)", run_naive(url, tiles, args.connections))
        if not args.no_peers:
            proc, base = start_tipg(url, args.workers)
            try:
                props = ",".join(PUBLIC)
                note("tipg cold", run_paths(base, [
                    f"/collections/public.land_parcels/tiles/WebMercatorQuad/{z}/{x}/{y}"
                    f"?properties={props}" for z, x, y in tiles], args.connections))
            finally:
                proc.terminate()
                proc.wait()
        var = Path(tmp) / "var"
        proc, base = start_huegis(url, var, args.workers)
        nginx_procs: list[subprocess.Popen] = []
        try:
            note("huegis cold", run_paths(base, ours, args.connections))
            note("huegis warm (cache)", run_warm(base, ours, args.connections, args.seconds))
            if not args.no_nginx:
                cache_dir = var / "tile-cache"
                (Path(tmp) / "front").mkdir()
                (Path(tmp) / "plain").mkdir()
                p1, p2 = free_port(), free_port()
                nginx_procs.append(start_nginx(nginx_front(
                    Path(tmp) / "front", p1, base.removeprefix("http://"), cache_dir),
                    Path(tmp) / "front"))
                nginx_procs.append(start_nginx(nginx_plain(Path(tmp) / "plain", p2, cache_dir),
                                               Path(tmp) / "plain"))
                files = [f"/mvt/parcels/WebMercatorQuad/{z}/{x}/{y}.mvt" for z, x, y in tiles
                         if (cache_dir / f"mvt/parcels/WebMercatorQuad/{z}/{x}/{y}.mvt"
                             ).exists()]
                kept = {f.split("/", 4)[4] for f in files}
                front = [p for p, (z, x, y) in zip(ours, tiles, strict=True)
                         if f"{z}/{x}/{y}.mvt" in kept]
                note("nginx + huegis disk cache", run_warm(f"http://127.0.0.1:{p1}", front,
                                                           args.connections, args.seconds))
                note("plain nginx, same files", run_warm(f"http://127.0.0.1:{p2}", files,
                                                         args.connections, args.seconds))
        finally:
            for p in nginx_procs:
                p.terminate()
                p.wait()
            proc.terminate()
            proc.wait()
    report(args, len(tiles), rows)


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


def report(args: argparse.Namespace, n: int, rows: list[tuple[str, dict]]) -> None:
    by = dict(rows)
    lines = [f"# bench_tiles: {args.rows} parcels, {n} distinct z{ZOOMS[0]}–{ZOOMS[1]} tiles",
             "", f"{platform.node()}, {os.cpu_count()} CPU, Python {platform.python_version()},"
             f" {args.connections} connections, {args.workers} workers", "",
             "| run | tiles/s | p50 ms | p95 ms | p99 ms | statuses | load | client |",
             "|---|---:|---:|---:|---:|---|---:|---|"]
    for name, r in rows:
        lines.append(f"| {name} | {r['rps']:.1f} | {r['p50']:.1f} | {r['p95']:.1f} | "
                     f"{r['p99']:.1f} | {r['statuses']} | {r['load']:.1f} | "
                     f"{r.get('client', 'python threads')} |")
    lines.append("")
    cold = by.get("huegis cold")
    for peer in ("tipg cold", "naive ST_AsMVT (8 DB connections)"):
        if cold and peer in by:
            lines.append(f"- huegis cold / {peer}: **{cold['rps'] / by[peer]['rps']:.2f}×**")
    if "nginx + huegis disk cache" in by and "plain nginx, same files" in by:
        ratio = by["nginx + huegis disk cache"]["rps"] / by["plain nginx, same files"]["rps"]
        lines.append(f"- nginx in front / plain nginx: **{ratio:.2f}×**")
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"bench_tiles_{args.rows}.md").write_text(text)


if __name__ == "__main__":
    main()
