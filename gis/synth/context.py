"""What every generator shares: the ``source`` mark, the wards, a coarse site grid over the
city (ward, elevation, buildability, where people live), the street-grid frame in EPSG:9214
and a deterministic hash."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import psycopg
import shapely
from psycopg import sql

from gis.errors import DataMissing
from gis.raster import METRIC_EPSG, Grid, Terrain, metric_geometry, to_metric, transformer

SOURCE = "synthetic"
# Central Huế (EPSG:4326): the parcel grid fills outward from here.
CENTRE_LONLAT = (107.585, 16.463)
# The street grid is turned 45°, like the Citadel's.
GRID_ANGLE = math.radians(45.0)
CELL_M = 400.0  # superblock between arterial roads
SITE_RESOLUTION_M = 200.0
MAX_ELEVATION_M = 60.0  # above this, no parcels


@dataclass
class _Wards:
    codes: list[str]
    names: list[str]
    short_names: list[str]
    urban: np.ndarray  # bool: phường
    population: np.ndarray
    geom: np.ndarray  # EPSG:4326, prepared
    metric: np.ndarray  # EPSG:9214


def _load_wards(conn: psycopg.Connection) -> _Wards:
    rows = conn.execute(
        "SELECT gso_code, name, coalesce(short_name, name), unit_type, coalesce(population, 0), "
        "ST_AsBinary(geom) FROM wards ORDER BY gso_code").fetchall()
    if not rows:
        raise DataMissing("no wards in admin_units: load the real data first (huegis load demo)")
    geom = shapely.from_wkb([bytes(r[5]) for r in rows])
    shapely.prepare(geom)
    return _Wards(codes=[r[0] for r in rows], names=[r[1] for r in rows],
                  short_names=[r[2] for r in rows],
                  urban=np.array([r[3] == "Phường" for r in rows]),
                  population=np.array([r[4] for r in rows], float), geom=geom,
                  metric=metric_geometry(geom))


@dataclass
class _Site:
    """A coarse grid over the city: ward index, elevation and buildability per pixel."""

    grid: Grid
    ward: np.ndarray  # int16, -1 outside every ward
    elev: np.ndarray
    ok: np.ndarray  # land inside a ward, not water, below MAX_ELEVATION_M
    near_water: np.ndarray  # water within 600 m: check exactly
    weight: np.ndarray  # where people live (incident sampling)

    def index(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Flat pixel index of EPSG:9214 points, -1 outside the grid."""
        g = self.grid
        col = np.floor((x - g.x0) / g.resolution).astype(np.int64)
        row = np.floor((g.y1 - y) / g.resolution).astype(np.int64)
        inside = (col >= 0) & (col < g.width) & (row >= 0) & (row < g.height)
        return np.where(inside, row * g.width + col, -1)


@dataclass
class _Context:
    wards: _Wards
    terrain: Terrain
    site: _Site
    centre: np.ndarray  # EPSG:9214
    coast_dir: np.ndarray  # unit vector along the coast
    extras: dict = field(default_factory=dict)


def _context(conn: psycopg.Connection, seed: int) -> _Context:
    from rasterio.features import rasterize

    wards = _load_wards(conn)
    key = (seed, tuple(wards.codes), tuple(shapely.to_wkb(wards.geom).tolist()))
    cached = _CONTEXTS.get(key)
    if cached is not None:
        return cached
    terrain = Terrain(seed)
    allw = shapely.union_all(wards.metric)
    grid = Grid.covering(allw.bounds, SITE_RESOLUTION_M)
    ward = rasterize([(g, i) for i, g in enumerate(wards.metric)],
                     out_shape=(grid.height, grid.width), transform=grid.transform, fill=-1,
                     dtype="int16").ravel()
    x, y = (a.ravel() for a in grid.centres())
    water = terrain.water(x, y)
    elev = terrain.elevation(x, y, water)
    on_land = (water["river"] > 0) & (water["lagoon"] > 0)
    ok = (ward >= 0) & on_land & (elev < MAX_ELEVATION_M)
    near_water = (water["river"] < 600) | (water["lagoon"] < 600)
    centre = to_metric([CENTRE_LONLAT])[0]
    r_km = np.hypot(x - centre[0], y - centre[1]) / 1000.0
    weight = np.where((ward >= 0) & on_land,
                      np.exp(-elev / 25.0) * (1.0 + 6.0 * np.exp(-r_km / 4.0)), 0.0)
    coast = terrain.geography["coast"]
    d = coast[-1] - coast[0]
    site = _Site(grid, ward, elev.astype("float32"), ok, near_water, weight)
    ctx = _Context(wards, terrain, site, centre, d / np.hypot(*d))
    _CONTEXTS.clear()
    _CONTEXTS[key] = ctx
    return ctx


_CONTEXTS: dict[tuple, _Context] = {}


def _to_lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return transformer(METRIC_EPSG, 4326).transform(x, y)


def _hash(*parts: np.ndarray) -> np.ndarray:
    """A deterministic 64-bit integer mix of integer arrays (splitmix64 steps)."""
    h = np.full(np.broadcast(*parts).shape, 0x9E3779B97F4A7C15, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for p in parts:
            h ^= np.asarray(p).astype(np.uint64)
            h *= np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(31)
            h *= np.uint64(0x94D049BB133111EB)
            h ^= h >> np.uint64(29)
    return h



def delete_synthetic(conn: psycopg.Connection) -> None:
    """Delete the synthetic parcels, construction records and incidents (with their events).

    Rows from other sources are untouched; raster registrations are replaced by
    :func:`gis.raster.write_rasters` instead. The connection is not committed.
    """
    for table in ("incidents", "construction", "land_parcels"):
        conn.execute(sql.SQL("DELETE FROM {} WHERE source = %s").format(sql.Identifier(table)),
                     (SOURCE,))


def _rotate(u: np.ndarray, v: np.ndarray, c: np.ndarray | float, s: np.ndarray | float):
    return u * c - v * s, u * s + v * c


def _grid_to_metric(ctx: _Context, u: np.ndarray, v: np.ndarray):
    """Street-grid frame (turned by GRID_ANGLE around the centre) → EPSG:9214."""
    x, y = _rotate(u, v, math.cos(GRID_ANGLE), math.sin(GRID_ANGLE))
    return x + ctx.centre[0], y + ctx.centre[1]


def _metric_to_grid(ctx: _Context, x: np.ndarray, y: np.ndarray):
    return _rotate(x - ctx.centre[0], y - ctx.centre[1], math.cos(GRID_ANGLE),
                   -math.sin(GRID_ANGLE))
