"""OGC API Features Part 4: create, replace, update and delete features of editable layers."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter


@dataclass
class TransactionsRouter:
    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Features"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        pass
