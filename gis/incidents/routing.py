"""Routing a location to its ward: point in polygon over the 40 wards, else the nearest ward
within :data:`TOLERANCE_M` metres (simplified borders, the coast, the lagoon), else 400."""

from __future__ import annotations

import math
from dataclasses import dataclass

import asyncpg

from gis.errors import InvalidParameter, OutsideHue

TOLERANCE_M = 200.0

# ward_pieces: the wards subdivided (migration 0006). Inside a ward: the piece containing the
# point (on a shared border the lower code); else the nearest piece within tolerance metres
# (geodesic), a bounding box of tolerance degrees narrowing the index search generously.
_ROUTE = """
WITH p AS (SELECT ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326) AS g),
inside AS (
  SELECT w.gso_code, w.name, 0.0::float8 AS distance_m FROM ward_pieces w, p
  WHERE ST_Intersects(w.geom, p.g) ORDER BY w.gso_code LIMIT 1)
SELECT * FROM inside
UNION ALL
(SELECT w.gso_code, w.name, ST_Distance(w.geom::geography, p.g::geography) AS distance_m
 FROM ward_pieces w, p
 WHERE NOT EXISTS (SELECT 1 FROM inside) AND w.geom && ST_Expand(p.g, {tol_deg})
   AND ST_DWithin(w.geom::geography, p.g::geography, {tol_m})
 ORDER BY 3, 1 LIMIT 1)
LIMIT 1
"""


def route_sql(lon: str, lat: str, tol_m: str, tol_deg: str) -> str:
    """The routing query (gso_code, name, distance_m; no row outside Huế) over the given
    parameter placeholders, to run alone or inside a larger statement."""
    return _ROUTE.format(lon=lon, lat=lat, tol_m=tol_m, tol_deg=tol_deg)


def tolerance_deg(tolerance_m: float) -> float:
    """Degrees that surely cover ``tolerance_m`` metres around Huế (the index's box)."""
    return tolerance_m / 90_000 + 1e-4


@dataclass(frozen=True)
class Ward:
    """The ward a report goes to: GSO code, name, and how far outside it the point lies (m)."""

    code: str
    name: str
    distance_m: float


def check_lonlat(lon: float, lat: float) -> tuple[float, float]:
    """Finite WGS 84 coordinates, else 400.

    >>> check_lonlat(107.58, 16.47)
    (107.58, 16.47)
    """
    if not (math.isfinite(lon) and math.isfinite(lat)) or not (
            -180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidParameter("lat/long: give WGS 84 degrees (lat −90…90, long −180…180)")
    return float(lon), float(lat)


async def route(conn: asyncpg.Connection | asyncpg.Pool, lon: float, lat: float,
                tolerance_m: float = TOLERANCE_M) -> Ward:
    """The ward responsible for the point (lon, lat in EPSG:4326).

    Raises :class:`gis.errors.OutsideHue` (400) when the point is farther than
    ``tolerance_m`` metres (geodesic) from every ward.
    """
    lon, lat = check_lonlat(lon, lat)
    row = await conn.fetchrow(route_sql("$1", "$2", "$3", "$4"), lon, lat, tolerance_m,
                              tolerance_deg(tolerance_m))
    if row is None:
        raise OutsideHue(f"the location ({lat:.6f}, {lon:.6f}) is outside Huế City (more than "
                         f"{tolerance_m:.0f} m from every ward)")
    return Ward(row["gso_code"], row["name"], float(row["distance_m"]))
