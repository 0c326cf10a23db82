"""MapLibre style documents built from the catalog's styles, and the glyphs their labels use."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.deps import SettingsDep, base_url
from gis import styles
from gis.errors import InvalidParameter
from gis.tiles.generalize import zoom_range
from gis.webmap import glyphs

STYLE_JSON = "application/vnd.mapbox.style+json"


@dataclass
class StylesRouter:
    """``/styles`` (the list), ``/styles/{id}`` (a layer's style, or ``public`` for the whole
    public map) and ``/fonts/{fontstack}/{range}.pbf`` (label glyphs)."""

    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Styles"]))
    max_age: int = 300

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        r = self.router

        @r.get("/styles", summary="The map styles")
        async def list_styles(request: Request, settings: SettingsDep) -> dict:
            """The MapLibre styles: one per vector layer and ``public`` for the public map."""
            base = base_url(request, settings)
            out = []
            for sid in styles.style_ids():
                title, title_vi = styles.style_title(sid)
                out.append({"id": sid, "title": title, "title_vi": title_vi, "links": [
                    {"href": f"{base}/styles/{sid}", "rel": "stylesheet", "type": STYLE_JSON,
                     "title": "MapLibre style"}]})
            return {"styles": out, "links": [
                {"href": f"{base}/styles", "rel": "self", "type": "application/json"}]}

        @r.get("/styles/{style_id}", summary="A MapLibre style document",
               response_class=Response, responses={200: {"content": {STYLE_JSON: {}}}})
        async def style(request: Request, settings: SettingsDep,
                        style_id: Annotated[str, Path(description="A layer id or `public`")]
                        ) -> Response:
            """MapLibre style of a layer (or ``public``): categorised colours, labels, legend."""
            doc = styles.style_document(style_id, base_url(request, settings),
                                        settings.basemap_url, settings.basemap_attribution,
                                        zoom_range)
            return Response(json.dumps(doc, ensure_ascii=False), media_type=STYLE_JSON,
                            headers={"Cache-Control": f"public, max-age={self.max_age}",
                                     "Access-Control-Allow-Origin": "*"})

        @r.get("/fonts/{fontstack}/{glyph_range}.pbf", summary="Label glyphs (SDF)",
               response_class=Response,
               responses={200: {"content": {"application/x-protobuf": {}}}})
        async def font(fontstack: Annotated[str, Path(description="e.g. DejaVu Sans Book")],
                       glyph_range: Annotated[str, Path(description="e.g. 0-255")]) -> Response:
            """256 glyphs of a font as signed distance fields, for MapLibre labels."""
            start, sep, end = glyph_range.partition("-")
            if not (sep and start.isdigit() and end.isdigit()
                    and int(end) == int(start) + 255):
                raise InvalidParameter(f"glyph range must be like 0-255, not {glyph_range!r}")
            data = await run_in_threadpool(glyphs.glyph_range, fontstack, int(start))
            return Response(data, media_type="application/x-protobuf",
                            headers={"Cache-Control": "public, max-age=86400",
                                     "Access-Control-Allow-Origin": "*"})
