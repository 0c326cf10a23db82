"""Incidents for staff: intake, the inspector workflow, photos and the live feed."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter


@dataclass
class IncidentsRouter:
    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Incidents"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        pass
