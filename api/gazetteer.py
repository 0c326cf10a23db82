"""Place search over the local gazetteer (wards, points of interest, streets), ignoring
Vietnamese diacritics and case: ``GET /search?q=``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PoolDep
from gis import gazetteer


@dataclass
class GazetteerRouter:
    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Search"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        r = self.router

        @r.get("/search", summary="Find a place")
        async def search(pool: PoolDep,
                         q: Annotated[str, Query(max_length=gazetteer.MAX_QUERY)],
                         limit: Annotated[int, Query(ge=1, le=100)] = 10,
                         kind: Annotated[str | None, Query(
                             description=f"comma-separated: {', '.join(gazetteer.KINDS)}")
                         ] = None) -> dict:
            """Wards, landmarks, streets and points of interest whose name matches ``q``,
            without regard to diacritics or case ("Dai Noi" finds "Đại Nội"), as GeoJSON."""
            kinds = tuple(k.strip() for k in kind.split(",") if k.strip()) if kind else None
            places = await gazetteer.search(pool, q, limit, kinds)
            return {"type": "FeatureCollection", "query": q, "features": [
                {"type": "Feature", "id": f"{p.kind}:{p.id}",
                 "geometry": {"type": "Point", "coordinates": [round(p.lon, 6),
                                                              round(p.lat, 6)]},
                 "properties": {"kind": p.kind, "name": p.name, "alt_names": p.alt_names,
                                "ward_code": p.ward_code, "score": p.score}}
                for p in places]}
