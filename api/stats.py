"""Dashboard figures of the operations center: incident statistics and hexagon heatmaps."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import PoolDep
from gis.incidents.stats import GROUPS, HEX_SIZES, StatsQuery, figures, hexbins

FromQ = Annotated[dt.date | None, Query(alias="from", description="first local day (inclusive)")]
ToQ = Annotated[dt.date | None, Query(alias="to", description="last local day (inclusive)")]
WardQ = Annotated[str | None, Query(max_length=10, description="GSO code of a ward")]
CategoryQ = Annotated[str | None, Query(max_length=40)]


@dataclass
class StatsRouter:
    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Dashboard"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        r = self.router

        @r.get("/stats/incidents", summary="Incident figures")
        async def incident_stats(
                pool: PoolDep, start: FromQ = None, end: ToQ = None, ward: WardQ = None,
                category: CategoryQ = None,
                group_by: Annotated[str | None, Query(
                    description=f"one of {', '.join(GROUPS)}")] = None,
                median: bool = True) -> Response:
            """Counts, processed and on-time shares, mean and median hours to resolve and the
            satisfaction share, overall or per ward, category, day, week, month, status or
            channel (definitions: docs/incidents.md)."""
            q = StatsQuery(start, end, ward, category, group_by)
            out = {"from": start and start.isoformat(), "to": end and end.isoformat(),
                   "ward": ward, "category": category, "group_by": group_by,
                   "groups": await figures(pool, q, median)}
            # written directly: thousands of groups (days) are slow through jsonable_encoder
            return Response(json.dumps(out, ensure_ascii=False), media_type="application/json")

        @r.get("/stats/incidents/hexbins", summary="Incident hexagon heatmap (GeoJSON)")
        async def incident_hexbins(
                pool: PoolDep, start: FromQ = None, end: ToQ = None, ward: WardQ = None,
                category: CategoryQ = None,
                size: Annotated[float, Query(
                    description=f"hexagon edge, metres: one of {', '.join(map(str, HEX_SIZES))}"
                )] = 500.0) -> Response:
            """Reports counted in hexagons of ``size`` metres on a VN-2000 (EPSG:9214) grid."""
            text = await hexbins(pool, StatsQuery(start, end, ward, category), size)
            return Response(text, media_type="application/geo+json")
