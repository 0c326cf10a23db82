"""Benchmark: rendered maps. Cold PNG map tiles of land parcels, WMS GetMap 1024 × 1024, and
COG raster tiles next to TiTiler (titiler.core) reading the same file.

Run with ``python bench/bench_render.py`` (1,000,000 parcels and incidents; a quick check:
``--rows 10000``); see ``bench/README.md``. titiler.core is installed by this script in its own
virtual environment, ``bench/.peers-venv/titiler`` (never in the project's venv);
``--no-peers`` skips it.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from bench.bench_tiles import _given, demo_database, run_paths, start_huegis  # noqa: E402
from bench.common import free_port, wait_http  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TITILER_VENV = ROOT / "bench" / ".peers-venv" / "titiler"
TITILER_PACKAGES = ("titiler.core", "uvicorn")
CENTRAL_HUE = (107.56, 16.44, 107.62, 16.48)  # tests/common.py CENTRAL_HUE_BBOX
PNG_ZOOMS = (14, 17)
LOW_ZOOMS = (11, 13)  # parcels as land-use blocks (the generalized view)
RASTER_ZOOMS = (10, 13)
WMS_LAYERS = "wards,parcels,construction,incidents,tourism"
TITILER_APP = '''
from fastapi import FastAPI
from titiler.core.factory import TilerFactory

app = FastAPI()
app.include_router(TilerFactory().router)
'''


def tiles(zooms: tuple[int, int], bbox) -> list[tuple[int, int, int]]:
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    return [(t.z, t.x, t.y) for t in tms.tiles(*bbox, list(range(zooms[0], zooms[1] + 1)))]


def wms_paths(n: int, seed: int) -> list[str]:
    """``n`` GetMap requests of 1024 × 1024 px around central Huế at zoom-15/16 scales."""
    from pyproj import Transformer

    rnd = random.Random(seed)
    t = Transformer.from_crs(4326, 3857, always_xy=True)
    out = []
    for _ in range(n):
        lon = rnd.uniform(CENTRAL_HUE[0], CENTRAL_HUE[2])
        lat = rnd.uniform(CENTRAL_HUE[1], CENTRAL_HUE[3])
        x, y = t.transform(lon, lat)
        half = 512 * 156543.03392804097 / 2 ** rnd.choice((15, 16))
        out.append("/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&STYLES=&CRS=EPSG:3857"
                   f"&LAYERS={WMS_LAYERS}&BBOX={x - half},{y - half},{x + half},{y + half}"
                   "&WIDTH=1024&HEIGHT=1024&FORMAT=image/png&TRANSPARENT=TRUE")
    return out


def titiler_python() -> Path:
    py = TITILER_VENV / "bin" / "python"
    marker = TITILER_VENV / ".ready"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(TITILER_VENV)], check=True)
    if not marker.exists():
        subprocess.run([str(py), "-m", "pip", "install", "-q", *TITILER_PACKAGES], check=True)
        marker.write_text(" ".join(TITILER_PACKAGES))
    return py


def start_titiler(workers: int, tmp: Path) -> tuple[subprocess.Popen, str]:
    py, port = titiler_python(), free_port()
    (tmp / "titiler_app.py").write_text(TITILER_APP)
    proc = subprocess.Popen([str(py), "-m", "uvicorn", "titiler_app:app", "--port", str(port),
                             "--workers", str(workers), "--log-level", "warning"], cwd=tmp,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/docs", proc)
    return proc, base


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000, help="parcels in the demo")
    ap.add_argument("--incidents", type=int, default=None, help="default: --rows")
    ap.add_argument("--seed", type=int, default=46)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--wms", type=int, default=200, help="GetMap requests")
    ap.add_argument("--wms-connections", default="8",
                    help="keep-alive connections of the GetMap runs, e.g. 1,2,8 (one run each)")
    ap.add_argument("--wms-only", action="store_true", help="only the GetMap runs")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the database")
    ap.add_argument("--url", help="use this already loaded database (and its rasters) instead")
    args = ap.parse_args()
    wms_connections = [int(c) for c in args.wms_connections.split(",")]
    rows: list[tuple[str, dict]] = []

    def note(name: str, r: dict) -> None:
        r["load"] = os.getloadavg()[0]  # 1-minute load average at the end of the run
        rows.append((name, r))
        print(f"{name:<40} {r['rps']:>8.1f} req/s  p50 {r['p50']:7.1f}  p95 {r['p95']:7.1f}"
              f"  p99 {r['p99']:7.1f} ms  {r['statuses']}  load {r['load']:.1f}", flush=True)

    load_start = " ".join(f"{v:.1f}" for v in os.getloadavg())
    png = tiles(PNG_ZOOMS, CENTRAL_HUE)
    low = tiles(LOW_ZOOMS, CENTRAL_HUE)
    with tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        var = tmp / "var"
        with (demo_database(args.rows, args.incidents or args.rows, args.seed, args.keep, var)
              if not args.url else _given(args.url)) as url:
            import psycopg

            with psycopg.connect(url) as conn:
                cog, lonlat = conn.execute(
                    "SELECT path, ARRAY[ST_XMin(bounds), ST_YMin(bounds), ST_XMax(bounds), "
                    "ST_YMax(bounds)] FROM raster_datasets WHERE id = 'flood-depth'").fetchone()
            raster = tiles(RASTER_ZOOMS, tuple(lonlat))
            print(f"{len(png)} PNG tiles z{PNG_ZOOMS[0]}–{PNG_ZOOMS[1]}, {len(raster)} raster "
                  f"tiles z{RASTER_ZOOMS[0]}–{RASTER_ZOOMS[1]}, {args.wms} GetMap; "
                  f"{args.connections} connections, {args.workers} workers", flush=True)
            if not args.no_peers and not args.wms_only:
                proc, base = start_titiler(args.workers, tmp)
                try:
                    note("titiler.core raster tile (cold)", run_paths(base, [
                        f"/tiles/WebMercatorQuad/{z}/{x}/{y}.png?url={cog}&rescale=0,3"
                        f"&colormap_name=blues" for z, x, y in raster], args.connections))
                finally:
                    proc.terminate()
                    proc.wait()
            proc, base = start_huegis(url, var, args.workers)
            try:
                if not args.wms_only:
                    note("huegis raster tile (cold)", run_paths(base, [
                        f"/collections/flood-depth/map/tiles/WebMercatorQuad/{z}/{y}/{x}"
                        for z, x, y in raster], args.connections))
                    note("huegis parcels PNG tile (cold)", run_paths(base, [
                        f"/collections/parcels/map/tiles/WebMercatorQuad/{z}/{y}/{x}"
                        for z, x, y in png], args.connections))
                    note(f"huegis parcels PNG tile z{LOW_ZOOMS[0]}–{LOW_ZOOMS[1]} (cold, "
                         "blocks)", run_paths(base, [
                             f"/collections/parcels/map/tiles/WebMercatorQuad/{z}/{y}/{x}"
                             for z, x, y in low], args.connections))
                # GetMap images are not cached: the same requests are as cold in every run.
                for c in wms_connections:
                    note(f"huegis WMS GetMap 1024x1024, {c} conn.", run_paths(
                        base, wms_paths(args.wms, args.seed), c))
            finally:
                proc.terminate()
                proc.wait()
    report(args, len(png), rows, load_start)


def report(args: argparse.Namespace, n_png: int, rows: list[tuple[str, dict]],
           load_start: str) -> None:
    by = dict(rows)
    lines = [f"# bench_render: {args.rows} parcels, {n_png} PNG tiles", "",
             f"{platform.node()}, {os.cpu_count()} CPU, Python {platform.python_version()}, "
             f"{args.connections} connections ({args.wms_connections} for GetMap), "
             f"{args.workers} workers; load average at the start {load_start}, at the end "
             f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}", "",
             "| run | req/s | p50 ms | p95 ms | p99 ms | statuses | load after |",
             "|---|---:|---:|---:|---:|---|---:|"]
    for name, r in rows:
        lines.append(f"| {name} | {r['rps']:.1f} | {r['p50']:.1f} | {r['p95']:.1f} | "
                     f"{r['p99']:.1f} | {r['statuses']} | {r['load']:.1f} |")
    ours, peer = by.get("huegis raster tile (cold)"), by.get("titiler.core raster tile (cold)")
    if ours and peer:
        lines += ["", f"raster tile p50 time vs TiTiler: {ours['p50'] / peer['p50']:.2f}×; "
                  f"throughput {ours['rps'] / peer['rps']:.2f}× TiTiler's"]
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"bench_render_{args.rows}{'_wms' if args.wms_only else ''}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
