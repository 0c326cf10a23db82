"""WMS 1.3.0 on the Mapnik renderer: GetCapabilities, GetMap, GetFeatureInfo, GetLegendGraphic."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter


@dataclass
class WMSRouter:
    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["WMS"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        pass
