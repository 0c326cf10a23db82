"""Open311 GeoReport v2 at /open311/v2/: services and citizen requests."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter


@dataclass
class Open311Router:
    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Open311"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        pass
