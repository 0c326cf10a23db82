"""Rendered maps: PNG tiles (OGC API Maps), maps for print, legends and raster tiles."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter


@dataclass
class MapsRouter:
    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Maps"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        pass
