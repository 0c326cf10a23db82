"""The ``huegis`` command line (typer + rich)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from gis.errors import HueGISError
from gis.settings import Settings

app = typer.Typer(help="Huế GIS: spatial service and map platform for Huế City.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="The database: managed local PostGIS cluster and migrations.",
                     no_args_is_help=True)
load_app = typer.Typer(help="Load data sets.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(load_app, name="load")

console = Console()
err = Console(stderr=True)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn domain errors into a clear message and a non-zero exit."""
    try:
        yield
    except HueGISError as exc:
        err.print(f"[bold red]error[/] ({exc.code}): {exc.description}")
        raise typer.Exit(2) from None


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("[bold]{task.description:<13}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=err, transient=False)


def _settings() -> Settings:
    return Settings()


def _ready_dsn(settings: Settings) -> str:
    from gis.db import ensure_ready

    return ensure_ready(settings)


def _vector_layer(layer_id: str):
    from gis.catalog import vector_layer

    return vector_layer(layer_id)


# ---------------------------------------------------------------------------- db


@db_app.command("up")
def db_up() -> None:
    """Start the managed PostGIS cluster (./var/pg, port 5439); a no-op when it is up."""
    from gis.cluster import Cluster

    with _errors():
        settings = _settings()
        started = Cluster(settings).up()
        console.print(("[green]started[/]" if started else "already running") +
                      f": {settings.managed_url()}")


@db_app.command("down")
def db_down() -> None:
    """Stop the managed cluster."""
    from gis.cluster import Cluster

    with _errors():
        stopped = Cluster(_settings()).down()
        console.print("[green]stopped[/]" if stopped else "not running")


@db_app.command("status")
def db_status() -> None:
    """Show whether the managed cluster is initialised and running, and the schema revision."""
    from gis import db
    from gis.cluster import Cluster

    with _errors():
        settings = _settings()
        table = Table(show_header=False, box=None)
        if settings.uses_managed_cluster:
            for k, v in Cluster(settings).status().items():
                table.add_row(k, str(v))
        else:
            table.add_row("url", db.redact(settings.dsn))
        try:
            table.add_row("schema", str(db.current_revision(settings.dsn)))
        except Exception as exc:  # noqa: BLE001 - status reports, never fails
            table.add_row("schema", f"unreachable ({type(exc).__name__})")
        console.print(table)


@db_app.command("migrate")
def db_migrate(revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
               ) -> None:
    """Upgrade the schema with Alembic (starts the managed cluster if needed)."""
    from gis import db

    with _errors():
        dsn = _ready_dsn(_settings())
        db.migrate(dsn, revision)
        console.print(f"schema at [bold]{db.current_revision(dsn)}[/]")


@db_app.command("psql", context_settings={"allow_extra_args": True,
                                          "ignore_unknown_options": True})
def db_psql(ctx: typer.Context) -> None:
    """Open psql on the database (extra arguments are passed to psql)."""
    with _errors():
        dsn = _ready_dsn(_settings())
        psql = shutil.which("psql")
        if not psql:
            raise HueGISError("psql not found: apt-get install postgresql-client")
        os.execv(psql, [psql, dsn, *ctx.args])


# ---------------------------------------------------------------------------- data


@load_app.command("demo")
def load_demo(
    parcels: Annotated[int, typer.Option(min=0, help="Synthetic land parcels")] = 50_000,
    incidents: Annotated[int, typer.Option(min=0, help="Synthetic incident reports")] = 20_000,
    construction: Annotated[int, typer.Option(
        min=0, help="Synthetic permits and violations")] = 5_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data)")] = 46,
    if_empty: Annotated[bool, typer.Option("--if-empty",
                                           help="Do nothing when demo data is loaded")] = False,
) -> None:
    """Load the Huế demo: real wards and POIs plus generated parcels, incidents and rasters."""
    import psycopg

    from gis import db
    from gis.demo import DemoSize, demo_loaded
    from gis.demo import load_demo as _load

    with _errors():
        settings = _settings()
        dsn = _ready_dsn(settings)
        db.migrate(dsn)
        with psycopg.connect(dsn) as conn:
            if if_empty and demo_loaded(conn):
                console.print("demo data already loaded (use without --if-empty to reload)")
                return
            with _progress() as progress:
                def track(description: str, total: int):
                    task = progress.add_task(description, total=total)
                    return lambda n: progress.advance(task, n)

                counts = _load(conn, settings, DemoSize(parcels, construction, incidents, seed),
                               track)
        table = Table("layer", "rows", title="Huế demo loaded")
        for k, v in counts.items():
            table.add_row(k, f"{v:,}")
        console.print(table)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage, zipped Shapefile or CSV")],
    layer: Annotated[str, typer.Option("--layer", help="Target layer id")],
    crs: Annotated[str | None, typer.Option(help="CRS of the file, e.g. EPSG:9214")] = None,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid",
                                               help="Skip bad rows instead of refusing")] = False,
) -> None:
    """Import a file into a layer: all or nothing unless --skip-invalid."""
    import psycopg

    from gis.io import import_file

    with _errors():
        target = _vector_layer(layer)
        dsn = _ready_dsn(_settings())
        with psycopg.connect(dsn) as conn, _progress() as progress:
            task = None  # the bar appears once the file has been opened and counted

            def on_total(total: int) -> None:
                nonlocal task
                task = progress.add_task(f"import {target.id}", total=total)

            report = import_file(conn, file, target, crs, skip_invalid=skip_invalid,
                                 progress=lambda n: progress.advance(task, n),
                                 on_total=on_total)
            conn.commit()
        console.print(f"[green]imported[/] {report.inserted:,} of {report.read:,} rows into "
                      f"[bold]{target.id}[/] from EPSG:{report.source_crs} "
                      f"in {report.seconds:.1f} s")
        if report.repaired:
            console.print(f"repaired {len(report.repaired)} invalid geometries (rows "
                          f"{_rows(report.repaired)})")
        for row, reason in report.skipped[:50]:
            console.print(f"[yellow]skipped[/] row {row}: {reason}")
        if len(report.skipped) > 50:
            console.print(f"… and {len(report.skipped) - 50} more skipped rows")


def _rows(rows: list[int], most: int = 20) -> str:
    text = ", ".join(map(str, rows[:most]))
    return text + (f", … ({len(rows)} in all)" if len(rows) > most else "")


@app.command("export")
def export(
    layer: Annotated[str, typer.Option("--layer", help="Layer id")],
    format: Annotated[str, typer.Option("--format", help="gpkg, geojson or csv")] = "gpkg",
    bbox: Annotated[str | None, typer.Option(help="W,S,E,N in lon/lat")] = None,
    crs: Annotated[str | None, typer.Option(help="Output CRS, e.g. EPSG:9214")] = None,
    out: Annotated[Path | None, typer.Option(help="Output file")] = None,
) -> None:
    """Export a layer's public fields to a file."""
    import psycopg

    from gis.io import EXPORT_FORMATS, export_layer

    with _errors():
        target = _vector_layer(layer)
        if format not in EXPORT_FORMATS:
            raise HueGISError(f"unknown format {format!r}; use {', '.join(EXPORT_FORMATS)}")
        out = out or Path(f"{target.id}.{format}")
        dsn = _ready_dsn(_settings())
        with psycopg.connect(dsn) as conn, err.status(f"exporting {target.id} to {out}…"):
            n = export_layer(conn, target, out, format, bbox=bbox, crs=crs)  # type: ignore[arg-type]
        console.print(f"[green]exported[/] {n:,} features to {out}")


@app.command("layers")
def layers_cmd() -> None:
    """List the layer catalog."""
    from layers import CATALOG, Layer

    table = Table("id", "title", "tiêu đề", "kind", "table / file", "private fields")
    for layer in CATALOG.values():
        if isinstance(layer, Layer):
            table.add_row(layer.id, layer.title, layer.title_vi, layer.geometry_type,
                          layer.table, ", ".join(f.name for f in layer.private_fields) or "—")
        else:
            table.add_row(layer.id, layer.title, layer.title_vi, "raster", layer.filename, "—")
    console.print(table)


# ---------------------------------------------------------------------------- serve


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """Serve the API and map (starts the managed database when it is the target)."""
    import uvicorn

    with _errors():
        _ready_dsn(_settings())
    console.print(f"Huế GIS on [bold]http://{host}:{port}[/]")
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="info")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
