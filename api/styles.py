"""MapLibre style documents built from the catalog's styles."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter


@dataclass
class StylesRouter:
    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Styles"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        pass
