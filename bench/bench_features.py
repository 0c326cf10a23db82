"""Benchmark: OGC API Features items over HTTP at 8 connections, Huế GIS next to tipg and
pygeoapi serving the same ``land_parcels`` table with the same public fields, plus feature-by-id
and deep pages (issue 10). Only HTTP 200 answers count in req/s and latency (errors apart).

Run with ``.venv/bin/python bench/bench_features.py --rows 1000000`` (small check:
``--rows 5000 --seconds 5``); see ``bench/README.md``. The peers are installed by this script
in ``bench/.peers-venv`` (never in the project's venv); ``--no-peers`` skips them. Prints
p50/p95/p99 latency and throughput per scenario and writes
``bench/results/bench_features_<rows>.md``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from bench.common import free_port, start_huegis, wait_http  # noqa: E402,F401

RESULTS = ROOT / "bench" / "results"
PEERS_VENV = ROOT / "bench" / ".peers-venv"
PEER_PACKAGES = ["tipg", "pygeoapi", "gunicorn", "uvicorn", "psycopg2-binary", "sqlalchemy",
                 "geoalchemy2"]
CQL2 = "land_use = 'ODT' AND area_m2 > 150"
BOX_M = 450.0
RARE = "owner_type = 'state' AND area_m2 > 2000"  # few parcels, anywhere in the table


def load(url: str, var_dir: Path, rows: int, seed: int) -> None:
    """Migrate the new database and load the demo with ``rows`` parcels (not timed)."""
    import psycopg

    from gis import db
    from gis.demo import DemoSize, load_demo
    from gis.settings import Settings

    db.migrate(url)
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        load_demo(conn, Settings(database_url=url, var_dir=var_dir),
                  DemoSize(parcels=rows, construction=1000, incidents=max(1000, rows // 10),
                           seed=seed))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(f"demo with {rows:,} parcels loaded in {time.perf_counter() - started:.0f} s")


def sample(url: str, n: int, seed: int) -> tuple[list[tuple[float, ...]], list[int], int]:
    """``n`` random 450 m boxes centred on parcels, ``n`` random parcel ids, and the count."""
    import psycopg

    with psycopg.connect(url) as conn:
        total, hi = conn.execute("SELECT count(*), max(id) FROM land_parcels").fetchone()
        # Every k-th parcel by id: spread over the whole table, and the same ones in every
        # run (without ORDER BY, a synchronized sequential scan of a big table starts where
        # another scan is, so each run drew other boxes).
        pts = conn.execute(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) c FROM land_parcels "
            "WHERE id %% %s = 0 ORDER BY id LIMIT %s) s", (max(1, total // n), n)).fetchall()
    rnd = random.Random(seed)
    boxes = []
    for x, y in pts:
        dy = BOX_M / 2 / 110_574
        dx = BOX_M / 2 / (111_320 * math.cos(math.radians(y)))
        cx, cy = x + rnd.uniform(-dx, dx), y + rnd.uniform(-dy, dy)
        boxes.append((cx - dx, cy - dy, cx + dx, cy + dy))
    ids = [rnd.randint(1, hi) for _ in range(n)]
    return boxes, ids, total


# ------------------------------------------------------------------------------- servers
def peers_venv() -> Path:
    """``bench/.peers-venv`` with tipg and pygeoapi (made once)."""
    py = PEERS_VENV / "bin" / "python"
    marker = PEERS_VENV / ".bench_features_ready"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    if not marker.exists():
        subprocess.run([str(py), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
        marker.write_text(" ".join(PEER_PACKAGES))
    return PEERS_VENV / "bin"


def _db_parts(url: str) -> dict:
    p = urllib.parse.urlsplit(url)
    q = dict(urllib.parse.parse_qsl(p.query))
    return {"host": q.get("host", p.hostname or "localhost"),
            "port": int(q.get("port", p.port or 5432)), "dbname": p.path.lstrip("/"),
            "user": p.username or "postgres", "password": p.password or ""}


def start_tipg(url: str, workers: int) -> tuple[subprocess.Popen, str]:
    bin_dir, port, d = peers_venv(), free_port(), _db_parts(url)
    auth = urllib.parse.quote(d["user"]) + (
        ":" + urllib.parse.quote(d["password"]) if d["password"] else "")
    # A socket directory as the host, percent-encoded (asyncpg decodes it).
    dsn = (f"postgresql://{auth}@{urllib.parse.quote(d['host'], safe='')}:{d['port']}/"
           f"{d['dbname']}")
    env = {**os.environ, "DATABASE_URL": dsn, "TIPG_DB_SCHEMAS": '["public"]',
           "TIPG_DB_TABLES": '["public.land_parcels"]', "TIPG_MAX_FEATURES_PER_QUERY": "10000"}
    proc = subprocess.Popen([str(bin_dir / "uvicorn"), "tipg.main:app", "--port", str(port),
                             "--workers", str(workers), "--log-level", "warning"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/collections", proc)
    return proc, base


def public_fields() -> list[str]:
    """The parcels' fields an anonymous reader gets (the catalog's public ones)."""
    from gis.auth import PUBLIC
    from gis.sqlbuild import visible_fields
    from layers import VECTOR_LAYERS

    return visible_fields(VECTOR_LAYERS["parcels"], principal=PUBLIC)


def start_pygeoapi(url: str, workers: int, tmp: Path) -> tuple[subprocess.Popen, str]:
    bin_dir, port, d = peers_venv(), free_port(), _db_parts(url)
    base = f"http://127.0.0.1:{port}"
    x = "x"
    config = {
        "server": {"bind": {"host": "127.0.0.1", "port": port}, "url": base,
                   "mimetype": "application/json; charset=UTF-8", "encoding": "utf-8",
                   "language": "en-US", "pretty_print": False,
                   "limits": {"default_items": 100, "max_items": 10000},
                   "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                           "attribution": "OSM"}},
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {"title": x, "description": x, "keywords": [x],
                               "keywords_type": "theme", "terms_of_service": x, "url": base},
            "license": {"name": x, "url": base},
            "provider": {"name": x, "url": base},
            "contact": {k: x for k in ("name", "position", "address", "city",
                                       "stateorprovince", "postalcode", "country", "phone",
                                       "fax", "email", "url", "hours", "instructions")}
            | {"role": "pointOfContact"}},
        "resources": {"parcels": {
            "type": "collection", "title": "parcels", "description": "parcels",
            "keywords": ["parcels"], "links": [],
            "extents": {"spatial": {"bbox": [107.0, 15.9, 108.3, 16.8],
                                    "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
            "providers": [{"type": "feature", "name": "PostgreSQL",
                           "data": {"host": d["host"], "port": d["port"], "dbname": d["dbname"],
                                    "user": d["user"], "password": d["password"],
                                    "search_path": ["public"]},
                           "id_field": "id", "table": "land_parcels", "geom_field": "geom",
                           # The public fields huegis answers with. Without this list pygeoapi
                           # 0.21 puts every column in the properties, the second geometry
                           # (geom_3857) too, which its JSON encoder cannot write: every
                           # request was an HTTP 500, and that was what the runs measured.
                           "properties": public_fields()}]}},
    }
    cfg = tmp / "pygeoapi.yml"
    cfg.write_text(json.dumps(config))  # JSON is YAML
    openapi = tmp / "pygeoapi-openapi.yml"
    env = {**os.environ, "PYGEOAPI_CONFIG": str(cfg), "PYGEOAPI_OPENAPI": str(openapi)}
    subprocess.run([str(bin_dir / "pygeoapi"), "openapi", "generate", str(cfg),
                    "--output-file", str(openapi)], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    proc = subprocess.Popen([str(bin_dir / "gunicorn"), "-w", str(workers), "-b",
                             f"127.0.0.1:{port}", "pygeoapi.flask_app:APP"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"{base}/collections?f=json", proc)
    return proc, base


# ----------------------------------------------------------------------------------- load
def run_load(base: str, paths: Callable[[random.Random], str], seconds: float,
             connections: int, seed: int) -> dict:
    """``connections`` threads with keep-alive connections requesting ``paths(rnd)`` for
    ``seconds``; latency percentiles (ms), throughput and errors."""
    host, port = urllib.parse.urlsplit(base).hostname, urllib.parse.urlsplit(base).port
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(i: int) -> None:
        rnd = random.Random(seed + i)
        conn = http.client.HTTPConnection(host, port, timeout=60)
        mine, bad = [], 0
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                conn.request("GET", paths(rnd), headers={"Accept": "application/geo+json"})
                r = conn.getresponse()
                r.read()
                if r.status != 200:  # an error is no answer: not in req/s or latency
                    bad += 1
                    continue
            except (OSError, http.client.HTTPException):
                bad += 1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=60)
                continue
            mine.append(time.perf_counter() - t0)
        with lock:
            lat.extend(mine)
            errors[0] += bad

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    lat.sort()

    def pct(p: float) -> float:
        return 1000 * lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")

    return {"requests": len(lat), "errors": errors[0], "rps": len(lat) / elapsed,
            "p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99)}


def one(base: str, path: str) -> tuple[float, int]:
    """Time one request (ms) on an idle server."""
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(base + path, timeout=120) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    return 1000 * (time.perf_counter() - t0), status


def idle_series(base: str, paths: list[str]) -> tuple[float, float, float]:
    """p50/p95/p99 (ms) of ``paths`` requested one after another on one keep-alive
    connection of an otherwise idle server (issue 10: feature by id p95 ≤ 5 ms)."""
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    times = []
    for path in paths:
        t0 = time.perf_counter()
        conn.request("GET", path)
        conn.getresponse().read()
        times.append(1000 * (time.perf_counter() - t0))
    conn.close()
    times.sort()
    return tuple(times[min(len(times) - 1, int(q * len(times)))] for q in (0.5, 0.95, 0.99))


def probes(coll: str, cap: int, total: int, fid: int) -> list[tuple[str, str]]:
    """Single requests that could be slow on a big table (issue 10: none should take 1 s)."""
    q = urllib.parse.quote
    inc = "/collections/incidents"
    return [
        ("offset=cap (seek)", f"{coll}/items?limit=10&offset={cap}"),
        ("offset=cap+1 (400)", f"{coll}/items?limit=10&offset={cap + 1}"),
        ("after=90% (next link)", f"{coll}/items?limit=10&after={int(total * 0.9)}"),
        ("before=90% (prev link)", f"{coll}/items?limit=10&before={int(total * 0.9)}"),
        ("item by id", f"{coll}/items/{fid}"),
        ("item by id, not a number (404)", f"{coll}/items/abc"),
        ("items, no filter", f"{coll}/items?limit=100"),
        ("items limit=10000", f"{coll}/items?limit=10000"),
        ("sortby=-area_m2", f"{coll}/items?limit=100&sortby=-area_m2"),
        ("sortby=-area_m2 offset=cap", f"{coll}/items?limit=100&sortby=-area_m2&offset={cap}"),
        ("CQL2 rare match, no bbox",
         f"{coll}/items?limit=100&filter={q(RARE)}"),
        ("land_use=ODT equality", f"{coll}/items?limit=100&land_use=ODT"),
        ("items as HTML", f"{coll}/items?limit=100&f=html"),
        ("items crs=EPSG:9214", f"{coll}/items?limit=100&crs=EPSG:9214"),
        ("collection (extent)", coll),
        ("incidents collection (extent)", inc),
        ("incidents datetime interval", f"{inc}/items?limit=100&datetime=2025-01-01/.."),
        ("incidents S_DWITHIN 1 km",
         f"{inc}/items?limit=100&filter={q('S_DWITHIN(geom,POINT(107.5775 16.469),1,km)')}"),
    ]


def bbox_q(b: tuple[float, ...]) -> str:
    return ",".join(f"{v:.6f}" for v in b)


def main() -> None:  # noqa: C901 (one scenario after another)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=20.0, help="per scenario and server")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2, help="server processes of each peer")
    ap.add_argument("--seed", type=int, default=46)
    ap.add_argument("--database", help="an already loaded database URL (not dropped)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    ap.add_argument("--no-peers", action="store_true")
    args = ap.parse_args()

    from gis import db
    from gis.settings import Settings

    base_settings = Settings()
    tmp = Path(tempfile.mkdtemp(prefix="bench_features_"))
    server = (os.environ.get("HUEGIS_DATABASE_URL") and db.with_database(
        base_settings.dsn, "postgres")) or base_settings.managed_url("postgres")
    if args.database is None:
        db.ensure_ready(base_settings)
        ctx = db.scratch_database(server, "huegis_bench_features", keep=args.keep)
    else:
        from contextlib import nullcontext
        ctx = nullcontext(args.database)
    rows_out: list[tuple[str, str, dict]] = []
    procs: list[subprocess.Popen] = []
    with ctx as url:
        if args.database is None:
            load(url, tmp, args.rows, args.seed)
        boxes, ids, total = sample(url, 2000, args.seed)
        servers: dict[str, tuple[str, str]] = {}  # name -> (base, collection path)
        proc, base = start_huegis(url, tmp, args.workers)
        procs.append(proc)
        servers["huegis"] = (base, "/collections/parcels")
        if not args.no_peers:
            for name, start, coll in (
                    ("tipg", lambda: start_tipg(url, args.workers),
                     "/collections/public.land_parcels"),
                    ("pygeoapi", lambda: start_pygeoapi(url, args.workers, tmp),
                     "/collections/parcels")):
                try:
                    proc, pbase = start()
                    procs.append(proc)
                    servers[name] = (pbase, coll)
                except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
                    print(f"{name}: could not start ({exc}); left out")
        try:
            cql = urllib.parse.quote(CQL2)
            # Every server answers with the same public fields: tipg by ?properties= (else
            # it returns every column, the owners' names included), pygeoapi by its config.
            suffix = {"pygeoapi": "&f=json", "tipg": f"&properties={','.join(public_fields())}"}
            for name, (base, coll) in servers.items():
                fj = suffix.get(name, "")
                # pygeoapi takes CQL text without filter-lang (it refuses "cql2-text").
                lang = "" if name == "pygeoapi" else "&filter-lang=cql2-text"
                scenarios = {
                    "items bbox limit=100": lambda r, c=coll, fj=fj:
                        f"{c}/items?limit=100&bbox={bbox_q(r.choice(boxes))}{fj}",
                    "items CQL2 + bbox": lambda r, c=coll, fj=fj, lang=lang:
                        f"{c}/items?limit=100&bbox={bbox_q(r.choice(boxes))}&filter={cql}"
                        f"{lang}{fj}",
                    "feature by id": lambda r, c=coll, fj=fj:
                        f"{c}/items/{r.choice(ids)}" + (fj.replace("&", "?")),
                }
                for label, paths in scenarios.items():
                    run_load(base, paths, 1.0, args.connections, args.seed + 1)  # warm-up
                    res = run_load(base, paths, args.seconds, args.connections, args.seed)
                    # The 1-minute load average at the end: other work on the machine shows.
                    res["load"] = os.getloadavg()[0]
                    rows_out.append((label, name, res))
                    print(f"{label:22} {name:9} {res['rps']:8.1f} req/s  p50 {res['p50']:7.1f}"
                          f"  p95 {res['p95']:7.1f}  p99 {res['p99']:7.1f} ms  "
                          f"errors {res['errors']}  load {res['load']:.1f}")
            deep = []
            hb, hc = servers["huegis"]
            cap = Settings().max_items_offset
            for label, path in probes(hc, cap, total, ids[0]):
                ms, status = one(hb, path)
                deep.append((f"huegis {label}", ms, status))
            by_id = [f"{hc}/items/{fid}" for fid in ids[:500]]
            idle_series(hb, by_id[:50])  # warm-up
            for q, ms in zip(("p50", "p95", "p99"), idle_series(hb, by_id), strict=True):
                deep.append((f"huegis item by id, {len(by_id)} in a row, {q}", ms, 200))
            for name in ("tipg", "pygeoapi"):
                if name in servers:
                    b, c = servers[name]
                    ms, status = one(b, f"{c}/items?limit=10&offset={int(total * 0.9)}"
                                     + ("&f=json" if name == "pygeoapi" else ""))
                    deep.append((f"{name} offset=90%", ms, status))
            for label, ms, status in deep:
                print(f"{label:32} {ms:9.1f} ms  HTTP {status}")
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
    report(args, total, rows_out, deep)


def report(args: argparse.Namespace, total: int, rows_out: list, deep: list) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    ref = {label: res["rps"] for label, name, res in rows_out if name == "huegis"}
    lines = [f"# bench_features: {total:,} parcels, {args.connections} connections, "
             f"{args.seconds:g} s per scenario, {args.workers} workers per server, no "
             "access log in any server",
             f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
             "", "| scenario | server | req/s | p50 ms | p95 ms | p99 ms | errors "
             "| huegis ÷ server | load |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, name, r in rows_out:
        ratio = ref.get(label, float("nan")) / r["rps"] if r["rps"] else float("inf")
        lines.append(f"| {label} | {name} | {r['rps']:.1f} | {r['p50']:.1f} | {r['p95']:.1f} | "
                     f"{r['p99']:.1f} | {r['errors']} | {ratio:.2f}× | {r['load']:.1f} |")
    lines += ["", "| one request, idle server | ms | HTTP |", "|---|---:|---:|"]
    lines += [f"| {label} | {ms:.1f} | {status} |" for label, ms, status in deep]
    out = RESULTS / f"bench_features_{total}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
