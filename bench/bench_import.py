"""Benchmark: import 1,000,000 land parcels (EPSG:9214 GeoPackage) end to end, next to ogr2ogr.

Run with ``python bench/bench_import.py`` (``make bench``); see ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"
# Huế urban area (lon/lat), where the synthetic parcels are laid out.
URBAN_BBOX = (107.52, 16.41, 107.66, 16.51)
LAND_USE_WEIGHTS = {"ODT": 0.55, "CLN": 0.1, "TMD": 0.08, "DGT": 0.06, "SKC": 0.04,
                    "DGD": 0.03, "DYT": 0.02, "DVH": 0.02, "TON": 0.03, "DKV": 0.03,
                    "LUC": 0.02, "HNK": 0.01, "NTD": 0.01}
OWNER_TYPES = ("household", "organisation", "state", "religious", "community")
OWNER_WEIGHTS = (0.8, 0.08, 0.08, 0.02, 0.02)
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ",
          "Tôn Thất", "Nguyễn Phúc")
GIVEN = ("Văn An", "Thị Bình", "Văn Cường", "Thị Dung", "Quang Huy", "Thị Hoa", "Minh Khoa",
         "Thị Lan", "Đức Long", "Thị Mai", "Hữu Phước", "Thị Thu")
STREETS = ("Lê Lợi", "Trần Hưng Đạo", "Hùng Vương", "Nguyễn Huệ", "Lý Thường Kiệt",
           "Đinh Tiên Hoàng", "Lê Duẩn", "Phan Bội Châu", "Bà Triệu", "Nguyễn Trãi")
SHEET_CELLS = 40  # a map sheet covers SHEET_CELLS x SHEET_CELLS parcels


def generate_parcels(rows: int, path: Path, seed: int = 2025) -> Path:
    """Write ``rows`` rectangular-ish parcels in EPSG:9214 to the GeoPackage ``path``.

    Deterministic for a given ``rows`` and ``seed``: a regular grid over the urban area with
    every corner jittered, grouped into map sheets of ``SHEET_CELLS``² parcels.
    """
    import geopandas as gpd
    import pyogrio
    import shapely
    from pyproj import Transformer

    rng = np.random.default_rng(seed)
    to_tm3 = Transformer.from_crs(4326, 9214, always_xy=True)
    x0, y0 = to_tm3.transform(URBAN_BBOX[0], URBAN_BBOX[1])
    x1, y1 = to_tm3.transform(URBAN_BBOX[2], URBAN_BBOX[3])
    width, height = x1 - x0, y1 - y0
    nx = int(np.ceil(np.sqrt(rows * width / height)))
    ny = int(np.ceil(rows / nx))
    cw, ch = width / nx, height / ny
    i = np.arange(rows)
    col, row = i % nx, i // nx
    left, bottom = x0 + col * cw, y0 + row * ch
    # Corners inset by 5 % and jittered by up to 10 % of the cell: parcels never overlap.
    jit = rng.uniform(-0.1, 0.1, size=(rows, 4, 2)) * np.array([cw, ch])
    base = np.array([[0.05, 0.05], [0.95, 0.05], [0.95, 0.95], [0.05, 0.95]]) * np.array([cw, ch])
    corners = base[None, :, :] + jit
    corners[:, :, 0] += left[:, None]
    corners[:, :, 1] += bottom[:, None]
    ring = np.concatenate([corners, corners[:, :1, :]], axis=1)
    geoms = shapely.polygons(ring)

    sheets_x = int(np.ceil(nx / SHEET_CELLS))
    sheet = (row // SHEET_CELLS) * sheets_x + (col // SHEET_CELLS) + 1
    in_sheet = (row % SHEET_CELLS) * SHEET_CELLS + (col % SHEET_CELLS) + 1
    codes = np.array(list(LAND_USE_WEIGHTS))
    weights = np.array(list(LAND_USE_WEIGHTS.values()))
    land_use = codes[rng.choice(len(codes), size=rows, p=weights / weights.sum())]
    owner_type = np.array(OWNER_TYPES)[rng.choice(len(OWNER_TYPES), size=rows,
                                                  p=OWNER_WEIGHTS)]
    names = np.array([f"{f} {g}" for f in FAMILY for g in GIVEN])
    owner_name = names[rng.integers(0, len(names), size=rows)]
    street = np.array(STREETS)[rng.integers(0, len(STREETS), size=rows)]
    number = rng.integers(1, 400, size=rows).astype(str)
    df = gpd.GeoDataFrame(
        {
            "parcel_no": in_sheet.astype(str),
            "map_sheet_no": sheet.astype(str),
            "land_use": land_use,
            "zoning": np.where(land_use == "ODT", "R1", "MIX"),
            "owner_type": owner_type,
            "owner_name": owner_name,
            "address": np.char.add(np.char.add(number, " "), street),
            "source": "bench",
        },
        geometry=geoms, crs="EPSG:9214")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.gpkg")
    tmp.unlink(missing_ok=True)
    # GeoPackage 1.3, which every GDAL reads without a warning (ogr2ogr is the system's).
    pyogrio.write_dataframe(df, tmp, layer="parcels", driver="GPKG",
                            dataset_options={"VERSION": "1.3"})
    tmp.replace(path)
    return path


@dataclass
class Result:
    tool: str
    rows: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def _server_url() -> str:
    """Server to create the benchmark database on: HUEGIS_DATABASE_URL's, or the managed one."""
    from gis import db
    from gis.settings import Settings

    settings = Settings()
    if settings.database_url:
        return db.with_database(settings.database_url, "postgres")
    from gis.cluster import Cluster

    Cluster(settings).up()
    return settings.managed_url("postgres")


def _pg_connection_string(url: str) -> tuple[str, dict[str, str]]:
    """``PG:`` connection string for ogr2ogr, and the environment (password kept out of argv)."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    env = dict(os.environ, PG_USE_COPY="YES")
    if params.get("password"):
        env["PGPASSWORD"] = str(params.pop("password"))
    text = " ".join(f"{k}='{v}'" for k, v in params.items() if v is not None)
    return f"PG:{text}", env


def run_huegis(url: str, path: Path, rows: int) -> Result:
    """``import_file`` end to end: read, validate, reproject, COPY, indexes, commit."""
    import psycopg

    from gis.io import import_file
    from layers import VECTOR_LAYERS

    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        report = import_file(conn, path, VECTOR_LAYERS["parcels"])
        conn.commit()
        seconds = time.perf_counter() - started
        (stored,) = conn.execute("SELECT count(*) FROM land_parcels").fetchone()
    if report.inserted != rows or stored != rows:
        raise SystemExit(f"huegis import wrote {report.inserted} rows ({stored} stored), "
                         f"expected {rows}; skipped: {report.skipped[:5]}")
    return Result("huegis import_file", rows, seconds)


def run_ogr2ogr(url: str, path: Path, rows: int) -> Result | None:
    """GDAL's ogr2ogr into a fresh table, reprojecting to EPSG:4326, with COPY."""
    import psycopg

    exe = shutil.which("ogr2ogr")
    if exe is None:
        print("ogr2ogr not found (apt-get install gdal-bin): skipped", file=sys.stderr)
        return None
    pg, env = _pg_connection_string(url)
    cmd = [exe, "-f", "PostgreSQL", pg, str(path), "parcels", "-nln", "bench_ogr2ogr_parcels",
           "-t_srs", "EPSG:4326", "-nlt", "MULTIPOLYGON", "-lco", "GEOMETRY_NAME=geom",
           "-lco", "FID=id", "-lco", "SPATIAL_INDEX=GIST", "-overwrite"]
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"ogr2ogr failed ({done.returncode}):\n{done.stderr}")
    with psycopg.connect(url) as conn:
        (stored,) = conn.execute("SELECT count(*) FROM bench_ogr2ogr_parcels").fetchone()
    if stored != rows:
        raise SystemExit(f"ogr2ogr stored {stored} rows, expected {rows}")
    return Result("GDAL ogr2ogr -f PostgreSQL (PG_USE_COPY=YES)", rows, seconds)


def machine(url: str) -> dict[str, str]:
    import psycopg
    import pyogrio

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gdal = subprocess.run(["ogr2ogr", "--version"], capture_output=True, text=True).stdout
    with psycopg.connect(url) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
        postgis = conn.execute("SELECT postgis_lib_version()").fetchone()[0]
    return {"cpu": f"{os.cpu_count()} cores, {cpu}", "os": platform.platform(),
            "python": platform.python_version(), "postgresql": pg, "postgis": postgis,
            "gdal (pyogrio)": pyogrio.__gdal_version_string__,
            "gdal (ogr2ogr)": gdal.strip().split(",")[0].removeprefix("GDAL ")}


def report(results: list[Result], info: dict[str, str], path: Path) -> str:
    ours = results[0]
    lines = ["| tool | rows | seconds | rows/s | vs ogr2ogr |", "|---|---:|---:|---:|---:|"]
    peer = results[1] if len(results) > 1 else None
    for r in results:
        ratio = f"{r.rate / peer.rate:.2f}×" if peer else "–"
        lines.append(f"| {r.tool} | {r.rows:,} | {r.seconds:.1f} | {r.rate:,.0f} | {ratio} |")
    lines.append("")
    lines.append(f"File: `{path.name}` ({path.stat().st_size / 1e6:.0f} MB, EPSG:9214). "
                 f"huegis import_file {'meets' if ours.seconds <= 60 else 'MISSES'} the 60 s "
                 "budget for 1,000,000 parcels" if ours.rows == 1_000_000 else "")
    lines.append("")
    lines += [f"- {k}: {v}" for k, v in info.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="parcels to generate")
    parser.add_argument("--keep", action="store_true",
                        help="keep the benchmark database (and print its URL)")
    parser.add_argument("--no-ogr2ogr", action="store_true", help="skip the ogr2ogr peer")
    args = parser.parse_args(argv)

    import psycopg
    from psycopg import sql

    from gis import db
    from gis.realdata import load_real
    from gis.settings import Settings

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"parcels_{args.rows}.gpkg"
    if not path.exists():
        started = time.perf_counter()
        generate_parcels(args.rows, path)
        print(f"generated {path} in {time.perf_counter() - started:.1f} s (not timed below)")
    server = _server_url()
    name = f"huegis_bench_{os.getpid()}_{int(time.time())}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = db.with_database(server, name)
    try:
        db.migrate(url)
        with psycopg.connect(url) as conn:
            load_real(conn, Settings().data_dir)
            conn.execute("CHECKPOINT")  # start both runs from a quiet server
        results = [run_huegis(url, path, args.rows)]
        print(f"huegis import_file: {results[0].seconds:.1f} s", flush=True)
        if not args.no_ogr2ogr:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CHECKPOINT")
            peer = run_ogr2ogr(url, path, args.rows)
            if peer:
                results.append(peer)
        text = report(results, machine(url), path)
    finally:
        if args.keep:
            print(f"kept database: {db.redact(url)}")
        else:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)))
    out = RESULTS / f"bench_import_{args.rows}.md"
    out.write_text(text, encoding="utf-8")
    print(text)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
