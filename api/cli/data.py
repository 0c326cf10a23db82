"""``huegis load``, ``import``, ``export`` and ``layers``: data in and out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api.cli.common import (
    _errors,
    _progress,
    _ready_dsn,
    _settings,
    _vector_layer,
    app,
    console,
    err,
)
from gis.errors import HueGISError

load_app = typer.Typer(help="Load data sets.", no_args_is_help=True)
app.add_typer(load_app, name="load")


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
