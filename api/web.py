"""Web pages: the public map, the embed, the inspector map, the dashboard, the planner page."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter


@dataclass
class WebRouter:
    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Web"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        pass
