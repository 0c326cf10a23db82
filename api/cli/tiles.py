"""``huegis tiles``: seeding the tile cache, PMTiles/MBTiles exports, generalized views."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import _errors, _progress, _ready_dsn, _settings, _vector_layer, app, console

tiles_app = typer.Typer(help="Vector tiles: cache seeding, static exports, generalized views.",
                        no_args_is_help=True)
app.add_typer(tiles_app, name="tiles")


@tiles_app.command("seed")
def seed(
    layer: Annotated[str, typer.Option("--layer", help="Collection id, e.g. parcels")],
    zoom: Annotated[str, typer.Option(help="Zoom or range, e.g. 10-16")] = "10-16",
    bbox: Annotated[str | None, typer.Option(
        help="W,S,E,N in degrees (default: the layer's extent)")] = None,
    tms: Annotated[str, typer.Option(help="WebMercatorQuad or WorldCRS84Quad")] =
        "WebMercatorQuad",
) -> None:
    """Build a layer's tiles into the cache (disk, and Redis when HUEGIS_REDIS_URL is set)."""
    from gis.tiles import offline

    with _errors():
        settings = _settings()
        _ready_dsn(settings)
        the_layer = _vector_layer(layer)
        offline.mvt.tile_matrix_set(tms)
        zooms = offline.parse_zooms(zoom)
        box = offline.parse_bbox(bbox) if bbox else None
        if box is None:
            import asyncpg

            async def extent():
                conn = await asyncpg.connect(settings.dsn)
                try:
                    return await offline.layer_extent(conn, the_layer)
                finally:
                    await conn.close()

            box = asyncio.run(extent())
        with _progress() as progress:
            task = progress.add_task(f"seed {layer}",
                                     total=offline.count_tiles(box, zooms, tms))
            written = asyncio.run(offline.seed(
                settings, the_layer, zooms, box, tms,
                progress=lambda n: progress.advance(task, n)))
    console.print(f"{written} tiles of [bold]{layer}[/] z{zooms[0]}–{zooms[1]} cached in "
                  f"{settings.tile_cache_path if settings.tile_cache_disk else 'Redis'}")


@tiles_app.command("export")
def export(
    fmt: Annotated[str, typer.Option("--format", help="pmtiles or mbtiles")] = "pmtiles",
    out: Annotated[Path | None, typer.Option(help="File to write")] = None,
    zoom: Annotated[str, typer.Option(help="Zoom or range")] = "6-14",
    bbox: Annotated[str | None, typer.Option(help="W,S,E,N (default: the layers' extent)")]
        = None,
    layers: Annotated[str | None, typer.Option(
        help="Comma-separated collection ids (default: every vector layer)")] = None,
) -> None:
    """Write the public layers' vector tiles to one PMTiles or MBTiles file (static hosting)."""
    from gis.tiles import offline

    with _errors():
        settings = _settings()
        _ready_dsn(settings)
        if fmt not in offline.EXPORT_FORMATS:
            from gis.errors import InvalidParameter

            raise InvalidParameter(f"unknown format {fmt!r}; use pmtiles or mbtiles")
        chosen = [_vector_layer(i.strip()) for i in layers.split(",")] if layers else None
        zooms = offline.parse_zooms(zoom)
        box = offline.parse_bbox(bbox) if bbox else None
        target = out or Path(f"huegis.{fmt}")
        with _progress() as progress:
            task = progress.add_task(f"export {fmt}", total=None)
            n = asyncio.run(offline.export(settings, target, fmt, zooms, box, chosen,
                                           progress=lambda k: progress.advance(task, k)))
    console.print(f"{n} tiles written to [bold]{target}[/]")


@tiles_app.command("refresh")
def refresh() -> None:
    """Rebuild the generalized views (parcel blocks, simplified wards) and invalidate them."""
    from gis.tiles import offline

    with _errors():
        settings = _settings()
        offline.refresh(_ready_dsn(settings))
    console.print("generalized views rebuilt")
