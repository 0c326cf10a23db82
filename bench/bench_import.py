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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"
SEED = 46  # the demo data's seed (gis.demo)
# Columns the import derives when a file lacks them (area in EPSG:9214, ward by point on
# surface): left out of the input file so that the benchmark times their computation.
DERIVED = ("area_m2", "ward_code")


@contextmanager
def database(server: str, prefix: str, keep: bool = False) -> Iterator[str]:
    """A new database on ``server``, migrated, with the real Huế data; dropped unless ``keep``."""
    import psycopg

    from gis import db
    from gis.realdata import load_real
    from gis.settings import Settings

    with db.scratch_database(server, prefix, keep=keep) as url:
        db.migrate(url)
        with psycopg.connect(url) as conn:
            load_real(conn, Settings().data_dir)
        yield url
        if keep:
            print(f"kept database: {db.redact(url)}")


def input_file(server: str, rows: int, seed: int) -> Path:
    """The cached GeoPackage of ``rows`` synthetic parcels in EPSG:9214, made if missing.

    The project's own code makes it, in a scratch database: :func:`gis.synth.generate_parcels`,
    then :func:`gis.io.exporter.export_layer` to EPSG:9214 with the private fields. The file is
    that export without the :data:`DERIVED` columns, which the timed import computes.
    """
    import psycopg
    import pyogrio

    from gis.io.exporter import export_layer
    from gis.synth import generate_parcels

    path = RESULTS / f"parcels_{rows}_seed{seed}.gpkg"
    if path.exists():
        return path
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    exported = path.with_name(f".{path.stem}.export.gpkg")
    part = path.with_name(f".{path.stem}.part.gpkg")
    try:
        with database(server, "huegis_bench_input") as url, psycopg.connect(url) as conn:
            generate_parcels(conn, rows, seed)
            conn.commit()
            export_layer(conn, "parcels", exported, "gpkg", crs="EPSG:9214",
                         include_private=True)
        fields = pyogrio.read_info(exported, layer="parcels")["fields"]
        df = pyogrio.read_dataframe(exported, layer="parcels",
                                    columns=[c for c in fields if c not in DERIVED])
        # GeoPackage 1.3, which every GDAL reads without a warning (ogr2ogr is the system's).
        pyogrio.write_dataframe(df, part, layer="parcels", driver="GPKG",
                                geometry_type="MultiPolygon", dataset_options={"VERSION": "1.3"})
        part.replace(path)
    finally:
        exported.unlink(missing_ok=True)
        part.unlink(missing_ok=True)
    print(f"generated and exported {rows:,} parcels (seed {seed}) to {path.name} in "
          f"{time.perf_counter() - started:.1f} s (not timed below)", flush=True)
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
        stored, derived = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE area_m2 > 0 AND ward_code IS NOT NULL) "
            "FROM land_parcels").fetchone()
    if report.inserted != rows or stored != rows:
        raise SystemExit(f"huegis import wrote {report.inserted} rows ({stored} stored), "
                         f"expected {rows}; skipped: {report.skipped[:5]}")
    if derived != rows:  # the file has no area_m2 and no ward_code: the import computes them
        raise SystemExit(f"huegis import computed area_m2 and ward_code for {derived} of "
                         f"{rows} rows")
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
    budget = (f" huegis import_file {'meets' if ours.seconds <= 60 else 'MISSES'} the 60 s "
              "budget for 1,000,000 parcels." if ours.rows == 1_000_000 else "")
    lines.append(f"File: `{path.name}` ({path.stat().st_size / 1e6:.0f} MB, EPSG:9214), "
                 "made by gis.synth.generate_parcels and gis.io.exporter.export_layer, without "
                 f"{' and '.join(DERIVED)}.{budget}")
    lines.append("")
    lines += [f"- {k}: {v}" for k, v in info.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="parcels to generate")
    parser.add_argument("--seed", type=int, default=SEED,
                        help=f"seed of gis.synth.generate_parcels (default {SEED})")
    parser.add_argument("--keep", action="store_true",
                        help="keep the benchmark database (and print its URL)")
    parser.add_argument("--no-ogr2ogr", action="store_true", help="skip the ogr2ogr peer")
    args = parser.parse_args(argv)

    import psycopg

    server = _server_url()
    path = input_file(server, args.rows, args.seed)
    with database(server, "huegis_bench", keep=args.keep) as url:
        with psycopg.connect(url, autocommit=True) as conn:
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
    out = RESULTS / f"bench_import_{args.rows}.md"
    out.write_text(text, encoding="utf-8")
    print(text)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
