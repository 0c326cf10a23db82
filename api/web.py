"""Web pages: the public map, the embed, the inspector map, the dashboard, the planner page;
their static files (MapLibre GL JS from ``web/node_modules``) and the folium export."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse

from api.deps import LayerDep, PrincipalDep, SettingsDep, base_url
from gis import styles
from gis.errors import InvalidParameter, NotFound
from gis.settings import PROJECT_ROOT, Settings
from layers import VECTOR_LAYERS
from layers.incidents import INCIDENT_CATEGORIES, INCIDENT_STATUSES, INCIDENTS

WEB_DIR = PROJECT_ROOT / "web"
STATIC_DIRS = {"vendor/maplibre-gl": WEB_DIR / "node_modules" / "maplibre-gl" / "dist",
               "": WEB_DIR / "static"}
DEFAULT_LAYERS = ("wards", "parcels", "tourism", "health", "education")


@lru_cache(maxsize=1)
def templates() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(WEB_DIR / "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined)


def parse_layers(text: str | None) -> list[str] | None:
    """Layer ids of ``?layers=a,b`` (public vector layers only), or ``None`` when absent.

    >>> parse_layers("tourism, health")
    ['tourism', 'health']
    >>> parse_layers("tourism,nope")
    Traceback (most recent call last):
    ...
    gis.errors.InvalidParameter: unknown layer 'nope' in layers; layers: wards, parcels, \
construction, incidents, education, health, tourism
    """
    if text is None:
        return None
    ids = [t.strip() for t in text.split(",") if t.strip()]
    for i in ids:
        if i not in styles.PUBLIC_ORDER:
            raise InvalidParameter(f"unknown layer {i!r} in layers; layers: "
                                   f"{', '.join(styles.PUBLIC_ORDER)}")
    return ids


def parse_center(text: str | None) -> list[float] | None:
    """``lon,lat`` (CRS84) of ``?center=``, near Huế.

    >>> parse_center("107.58,16.47")
    [107.58, 16.47]
    >>> parse_center("16.47,107.58")
    Traceback (most recent call last):
    ...
    gis.errors.InvalidParameter: center must be lon,lat near Huế (e.g. 107.58,16.47), \
not '16.47,107.58'
    """
    if text is None:
        return None
    try:
        lon, lat = (float(v) for v in text.split(","))
    except ValueError:
        lon = lat = float("nan")
    if not (106.5 <= lon <= 108.8 and 15.7 <= lat <= 17.1):
        raise InvalidParameter(f"center must be lon,lat near Huế (e.g. 107.58,16.47), "
                               f"not {text!r}")
    return [lon, lat]


def page_config(request: Request, settings: Settings, *, embed: bool = False,
                lang: str | None = None, layers: list[str] | None = None,
                center: list[float] | None = None, zoom: float | None = None) -> dict[str, Any]:
    """What the page script needs: URLs, the legend of the public layers, the start view."""
    base = base_url(request, settings)
    return {
        "base": base, "public_base": base, "embed": embed, "lang": lang,
        "style_url": f"{base}/styles/{styles.PUBLIC_STYLE}",
        "legend": [styles.legend(VECTOR_LAYERS[i]) for i in styles.PUBLIC_ORDER],
        "default_layers": list(DEFAULT_LAYERS), "layers": layers,
        "center": center or styles.HUE_CENTER,
        "zoom": styles.HUE_ZOOM if zoom is None else zoom,
    }


def render(name: str, status: int = 200, headers: dict[str, str] | None = None,
           **context: Any) -> HTMLResponse:
    html = templates().get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers=headers)


def static_file(path: str) -> Path:
    """The file of ``/static/{path}`` (never outside the static folders), or ``NotFound``."""
    for prefix, root in STATIC_DIRS.items():
        rest = path[len(prefix) + 1:] if prefix else path
        if prefix and not path.startswith(prefix + "/"):
            continue
        candidate = (root / rest).resolve()
        if root.resolve() in candidate.parents and candidate.is_file():
            return candidate
        if prefix and not root.exists():
            raise NotFound("MapLibre GL JS is not installed: run `make web` "
                           "(npm ci in web/)")
    raise NotFound(f"no static file {path!r}")


LangQuery = Annotated[str | None, Query(pattern="^(vi|en)$",
                                        description="Interface language (default: browser)")]


@dataclass
class WebRouter:
    """HTML pages and their static files; CSP ``frame-ancestors`` of ``/embed`` from the
    ``frame_ancestors`` setting (every other page: same origin only)."""

    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Web"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        r = self.router
        same_origin = {"Content-Security-Policy": "frame-ancestors 'self'"}

        @r.get("/map", response_class=HTMLResponse, summary="The public map")
        async def public_map(request: Request, settings: SettingsDep,
                             lang: LangQuery = None) -> HTMLResponse:
            """The public web map of Huế: layers, legend, popups, search, embed snippet."""
            cfg = page_config(request, settings, lang=lang)
            return render("map.html", headers=same_origin, config=cfg, base=cfg["base"],
                          embed=False, lang=lang or "vi", title="Bản đồ Huế")

        @r.get("/embed", response_class=HTMLResponse, summary="The map for iframes")
        async def embed(request: Request, settings: SettingsDep,
                        layers: Annotated[str | None, Query(
                            description="Layers shown, e.g. tourism,health")] = None,
                        center: Annotated[str | None, Query(
                            description="lon,lat of the centre")] = None,
                        zoom: Annotated[float | None, Query(ge=0, le=22)] = None,
                        lang: LangQuery = None) -> HTMLResponse:
            """A page made to be embedded in an iframe on other sites."""
            cfg = page_config(request, settings, embed=True, lang=lang,
                              layers=parse_layers(layers), center=parse_center(center),
                              zoom=zoom)
            csp = {"Content-Security-Policy": f"frame-ancestors {settings.frame_ancestors}"}
            return render("map.html", headers=csp, config=cfg, base=cfg["base"], embed=True,
                          lang=lang or "vi", title="Bản đồ Huế")

        def staff_page(page: str, title: str, request: Request, settings: Settings,
                       lang: str | None, config: dict[str, Any] | None = None,
                       **extra: Any) -> HTMLResponse:
            cfg = page_config(request, settings, lang=lang) | (config or {})
            return render(f"{page}.html", headers=same_origin, config=cfg, base=cfg["base"],
                          page=page, lang=lang or "vi", title=title, **extra)

        @r.get("/inspector", response_class=HTMLResponse, summary="The inspector map")
        async def inspector(request: Request, settings: SettingsDep,
                            lang: LangQuery = None) -> HTMLResponse:
            """Inspectors (sign-in): their wards' reports, filters, details, actions, live."""
            # Titles of every field the ward-scoped incidents API returns to inspectors (the
            # reporter's too: titles, not data; the data comes only after sign-in).
            fields = [styles.field_entry(f) for f in INCIDENTS.fields]
            return staff_page("inspector", "Bản đồ cán bộ kiểm tra", request, settings, lang,
                              config={"fields": fields},
                              statuses=[(s, INCIDENTS.field("status").choice_title(s, "en"))
                                        for s in INCIDENT_STATUSES],
                              categories=list(INCIDENT_CATEGORIES.items()))

        @r.get("/dashboard", response_class=HTMLResponse,
               summary="The operations-center dashboard")
        async def dashboard(request: Request, settings: SettingsDep,
                            lang: LangQuery = None) -> HTMLResponse:
            """Key figures, trend, hexagon heatmap and ward choropleth, refreshed live."""
            return staff_page("dashboard", "Trung tâm điều hành", request, settings, lang)

        @r.get("/planner", response_class=HTMLResponse, summary="The planner page")
        async def planner(request: Request, settings: SettingsDep,
                          lang: LangQuery = None) -> HTMLResponse:
            """What's here, intersects and flood exposure of an area, exports."""
            layers = [(i, VECTOR_LAYERS[i].title_vi if (lang or "vi") == "vi"
                       else VECTOR_LAYERS[i].title)
                      for i in ("parcels", "construction", "tourism", "health", "education")]
            return staff_page("planner", "Công cụ quy hoạch", request, settings, lang,
                              collections=layers)

        @r.get("/static/{path:path}", summary="Static files of the web pages",
               include_in_schema=False)
        async def static(path: Annotated[str, PathParam()]) -> FileResponse:
            file = static_file(path)
            media = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            return FileResponse(file, media_type=media,
                                headers={"Cache-Control": "public, max-age=3600"})

        @r.get("/collections/{collection_id}/folium", response_class=HTMLResponse,
               summary="A standalone HTML map of a layer (folium)")
        async def folium_map(layer: LayerDep, request: Request, settings: SettingsDep,
                             principal: PrincipalDep,
                             bbox: Annotated[str | None, Query(
                                 description="W,S,E,N in CRS84")] = None,
                             limit: Annotated[int, Query(ge=1, le=20_000)] = 5_000,
                             lang: Annotated[str, Query(
                                 pattern="^(vi|en)$",
                                 description="Language of the titles")] = "vi"
                             ) -> Response:
            """A standalone Leaflet map (folium) of a layer, with its style, legend, popups."""
            from gis.webmap import folium_export

            box = folium_export.parse_bbox(bbox)
            html = await run_in_threadpool(folium_export.layer_map_html, settings.dsn, layer,
                                           box, limit, principal, lang)
            return HTMLResponse(html, headers={"Content-Disposition":
                                               f'inline; filename="{layer.id}.html"'})
