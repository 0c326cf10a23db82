"""Dashboard figures of the operations center: incident statistics and hexagon heatmaps."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter


@dataclass
class StatsRouter:
    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Dashboard"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        pass
