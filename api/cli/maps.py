"""``huegis map``: standalone HTML maps (folium) of a layer or a query (issue: web map)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import _errors, _ready_dsn, _settings, _vector_layer, app, console
from gis.errors import InvalidParameter

map_app = typer.Typer(help="Standalone HTML maps (folium) styled from the catalog.",
                      no_args_is_help=True)
app.add_typer(map_app, name="map")


@map_app.command("export")
def map_export(
    layer: Annotated[str, typer.Option("--layer", help="Collection id, e.g. tourism")],
    out: Annotated[Path, typer.Option("--out", help="HTML file to write")],
    bbox: Annotated[str | None, typer.Option(help="W,S,E,N in CRS84")] = None,
    limit: Annotated[int, typer.Option(help="Most features drawn")] = 5_000,
    geojson: Annotated[Path | None, typer.Option(
        help="Draw this GeoJSON (e.g. a saved query result) instead of the layer's "
             "features, with the layer's style")] = None,
    lang: Annotated[str, typer.Option(help="Language of the titles: vi or en")] = "vi",
) -> None:
    """Write a standalone HTML map (Leaflet via folium) of a layer: public fields only."""
    from gis.webmap import folium_export

    with _errors():
        lyr = _vector_layer(layer)
        box = folium_export.parse_bbox(bbox)
        if lang not in ("vi", "en"):
            raise InvalidParameter(f"lang must be vi or en, not {lang!r}")
        if geojson is not None:
            data = json.loads(geojson.read_text(encoding="utf-8"))
            html = folium_export.geojson_map(lyr, data, box, lang).get_root().render()
            count = len(data.get("features", []))
        else:
            html = folium_export.layer_map_html(_ready_dsn(_settings()), lyr, box, limit,
                                                lang=lang)
            count = html.count('"type": "Feature"')
        out.write_text(html, encoding="utf-8")
    console.print(f"wrote {out} ({count} features of {lyr.id})")
