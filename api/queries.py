"""Planners' spatial queries in metres: what's here, nearest, within, intersects, zonal stats."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter


@dataclass
class QueriesRouter:
    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Queries"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        pass
