"""Vector tiles (MVT) for every vector layer of the catalog."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Path, Response

from api.deps import LayerDep, PoolDep, SettingsDep
from gis import tiles

MVT = "application/vnd.mapbox-vector-tile"


@dataclass
class TilesRouter:
    """Routes ``/collections/{id}/tiles/{tms}/{z}/{y}/{x}`` (the OGC order: row, then column)."""

    router: APIRouter = field(default_factory=lambda: APIRouter(tags=["Tiles"]))

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        @self.router.get(
            "/collections/{collection_id}/tiles/{tms_id}/{z}/{y}/{x}",
            summary="A vector tile of one layer", response_class=Response,
            responses={200: {"content": {MVT: {}}}, 204: {"description": "Empty tile"}})
        async def tile(layer: LayerDep, pool: PoolDep, settings: SettingsDep,
                       tms_id: Annotated[str, Path(description="WebMercatorQuad")],
                       z: Annotated[int, Path(description="Zoom level")],
                       y: Annotated[int, Path(description="Tile row")],
                       x: Annotated[int, Path(description="Tile column")]) -> Response:
            """Mapbox Vector Tile of a layer, public fields only; 204 when empty."""
            tms = tiles.tile_matrix_set(tms_id)
            tiles.check_tile(tms, z, x, y)
            headers = {"Cache-Control": "public, max-age=60"}
            if not layer.zoom[0] <= z <= layer.zoom[1]:
                return Response(status_code=204, headers=headers)
            data = await pool.fetchval(tiles.mvt_sql(layer), z, x, y,
                                       settings.tile_max_features)
            if not data:
                return Response(status_code=204, headers=headers)
            return Response(bytes(data), media_type=MVT, headers=headers)
