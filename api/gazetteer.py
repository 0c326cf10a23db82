"""Place search over the local gazetteer (wards, points of interest, streets), ignoring
Vietnamese diacritics and case: ``GET /search?q=``."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter


@dataclass
class GazetteerRouter:
    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Search"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        pass
