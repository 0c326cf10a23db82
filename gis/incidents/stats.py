"""Dashboard figures of the operations center, from the daily rollup ``incident_daily``
(kept exact by statement triggers, migration 0006) and, for medians and hexagons, from the
reports themselves.

Definitions (also in docs/incidents.md); a report counts on the local (UTC+07:00) day it was
filed, ``from`` and ``to`` are inclusive local days:

- ``count``: reports filed.
- ``processed_share``: share of them whose status is resolved, rejected or duplicate.
- ``on_time_share``: among resolved reports, the share resolved by their SLA due date.
- ``mean_hours_to_resolve`` / ``median_hours_to_resolve``: hours from filing to resolution,
  over resolved reports.
- ``satisfaction_share``: among rated reports, the share rated 4 or 5.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass

import asyncpg

from gis.errors import InvalidParameter
from gis.incidents import CATEGORIES

GROUPS = ("ward", "category", "day", "week", "month", "status", "channel", "priority")
_TZ = "'Asia/Ho_Chi_Minh'"
# Which dimension of the rollups a grouping reads, and its key there (alias d).
_DIM = {"status": "status", "channel": "channel", "priority": "priority"}
_KEY = {"ward": "d.ward_code", "category": "d.category", "status": "d.value",
        "channel": "d.value", "priority": "d.value", None: "'all'"}
_LOCAL = f"(i.created_at AT TIME ZONE {_TZ})"
_RAW_KEY = {"ward": "coalesce(i.ward_code, '')", "category": "i.category",
            "status": "i.status", "channel": "i.channel", "priority": "i.priority",
            "day": f"{_LOCAL}::date", "week": f"date_trunc('week', {_LOCAL})::date",
            "month": f"date_trunc('month', {_LOCAL})::date", None: "'all'"}


@dataclass(frozen=True)
class StatsQuery:
    """Filters and grouping of a figures request (validated)."""

    start: dt.date | None = None
    end: dt.date | None = None
    ward: str | None = None
    category: str | None = None
    group_by: str | None = None

    def __post_init__(self) -> None:
        if self.group_by is not None and self.group_by not in GROUPS:
            raise InvalidParameter(f"group_by: one of {', '.join(GROUPS)}")
        if self.category is not None and self.category not in CATEGORIES:
            raise InvalidParameter(f"category: one of {', '.join(CATEGORIES)}")
        if self.start and self.end and self.end < self.start:
            raise InvalidParameter("to: must not be before from")

    def where(self, first: int = 1) -> tuple[str, list]:
        """SQL conditions on the reports (alias ``i``) for the filters given, numbered from
        ``$first``, and their values (absent filters add nothing to evaluate per row)."""
        conds, args = ["true"], []

        def arg(value: object) -> str:
            args.append(value)
            return f"${first + len(args) - 1}"

        if self.start is not None:
            p = arg(self.start)  # the created_at bound lets the index narrow the scan
            conds += [f"{_LOCAL}::date >= {p}", f"i.created_at >= ({p}::date - 1)::timestamptz"]
        if self.end is not None:
            p = arg(self.end)
            conds += [f"{_LOCAL}::date <= {p}", f"i.created_at < ({p}::date + 2)::timestamptz"]
        if self.ward is not None:
            conds.append(f"coalesce(i.ward_code, '') = {arg(self.ward)}")
        if self.category is not None:
            conds.append(f"i.category = {arg(self.category)}")
        return " AND ".join(conds), args

    def months(self) -> tuple[dt.date | None, dt.date | None] | None:
        """The whole months inside [from, to] as [first, end) (None: unbounded), or None
        when there is none (or the grouping needs days)."""
        if self.group_by in ("day", "week"):
            return None
        first = last = None
        if self.start is not None:
            first = self.start if self.start.day == 1 else _next_month(self.start)
        if self.end is not None:
            after = self.end + dt.timedelta(days=1)
            last = after if after.day == 1 else self.end.replace(day=1)
        if first is not None and last is not None and first >= last:
            return None
        return first, last


def _next_month(day: dt.date) -> dt.date:
    """
    >>> _next_month(dt.date(2025, 12, 15))
    datetime.date(2026, 1, 1)
    """
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _share(num: int, den: int) -> float | None:
    return round(num / den, 6) if den else None


async def figures(conn: asyncpg.Connection | asyncpg.Pool, q: StatsQuery,
                  median: bool = True) -> list[dict]:
    """The figures per group (one group ``all`` without ``group_by``), ordered by key."""
    months = q.months()
    dim = _DIM.get(q.group_by or "", "all")
    sums = ("sum(n) AS n, sum(n_processed) AS n_processed, sum(n_on_time) AS n_on_time, "
            "sum(n_timed) AS n_timed, sum(resolve_s) AS resolve_s, sum(n_rated) AS n_rated, "
            "sum(n_satisfied) AS n_satisfied")
    key_day = {"day": "d.day", "week": "date_trunc('week', d.day)::date",
               "month": "date_trunc('month', d.day)::date"}.get(q.group_by or "",
                                                                _KEY.get(q.group_by))
    key_month = "d.month" if q.group_by in ("day", "week", "month") else _KEY[q.group_by]
    filters = ("d.dim = $1 AND ($4::text IS NULL OR d.ward_code = $4) AND "
               "($5::text IS NULL OR d.category = $5)")
    # Whole months from the monthly rollup, the days before and after them from the daily one.
    rows = await conn.fetch(
        f"""
        SELECT key, {sums} FROM (
          SELECT {key_month} AS key, d.n, d.n_processed, d.n_on_time, d.n_timed, d.resolve_s,
                 d.n_rated, d.n_satisfied
          FROM incident_rollup_month d
          WHERE $8 AND {filters} AND ($6::date IS NULL OR d.month >= $6)
            AND ($7::date IS NULL OR d.month < $7)
          UNION ALL
          SELECT {key_day}, d.n, d.n_processed, d.n_on_time, d.n_timed, d.resolve_s,
                 d.n_rated, d.n_satisfied
          FROM incident_rollup_day d
          WHERE {filters} AND ($2::date IS NULL OR d.day >= $2)
            AND ($3::date IS NULL OR d.day <= $3)
            AND NOT ($8 AND ($6::date IS NULL OR d.day >= $6) AND ($7::date IS NULL OR
                                                                  d.day < $7))) x
        GROUP BY key HAVING sum(n) <> 0 ORDER BY key
        """, dim, q.start, q.end, q.ward, q.category,
        months[0] if months else None, months[1] if months else None, months is not None)
    medians: dict = {}
    if median:
        where_i, args_i = q.where()
        med = await conn.fetch(
            f"SELECT {_RAW_KEY[q.group_by]} AS key, percentile_cont(0.5) WITHIN GROUP "
            "(ORDER BY extract(epoch FROM i.resolved_at - i.created_at)) AS m "
            "FROM incidents i WHERE i.status = 'resolved' AND i.resolved_at IS NOT NULL "
            f"AND {where_i} GROUP BY 1", *args_i)
        medians = {r["key"]: r["m"] for r in med}
    out = []
    for r in rows:
        key = r["key"]
        n_timed = int(r["n_timed"])
        m = medians.get(key)
        out.append({
            "key": key.isoformat() if isinstance(key, dt.date) else key,
            "count": int(r["n"]),
            "processed": int(r["n_processed"]),
            "processed_share": _share(int(r["n_processed"]), int(r["n"])),
            "resolved": n_timed,
            "on_time_share": _share(int(r["n_on_time"]), n_timed),
            "mean_hours_to_resolve": (round(float(r["resolve_s"]) / n_timed / 3600, 3)
                                      if n_timed else None),
            "median_hours_to_resolve": (round(float(m) / 3600, 3) if m is not None else None),
            "rated": int(r["n_rated"]),
            "satisfaction_share": _share(int(r["n_satisfied"]), int(r["n_rated"])),
        })
    return out


async def hexbins(conn: asyncpg.Connection | asyncpg.Pool, q: StatsQuery,
                  size_m: float = 500.0) -> dict:
    """A hexagon heatmap as a GeoJSON FeatureCollection: hexagons of ``size_m`` metres (edge)
    of the ``ST_HexagonGrid``/``ST_Hexagon`` tiling of VN-2000 / TM-3 107-00 (EPSG:9214, origin
    0,0), with the count of reports in each, from the public view (public-order points
    rounded). Each point is counted once, in the hexagon whose centre is nearest (the cell
    containing it); empty hexagons are left out.

    Column ``i`` of the tiling is centred at x = 1.5·s·i, row ``j`` at
    y = h·(2j + |i mod 2|) with h = s·√3/2. A point between the centres of columns c and c+1
    lies in one of their hexagons: the one whose centre is nearer (ties: the lower column).
    Coordinates come from the stored EPSG:9214 columns ``x9214``/``y9214`` (public-order
    points rounded to 100 m as in ``incidents_public``): arithmetic only, no transform."""
    if not 100 <= size_m <= 20_000:
        raise InvalidParameter("size: hexagon edge in metres, 100 to 20000")
    where, args = q.where(3)
    row = await conn.fetchrow(
        f"""
        WITH pts AS (
          SELECT x, y, floor(x / (1.5 * $1::float8))::int AS c0
          FROM (SELECT CASE WHEN i.category = 'public_order' THEN round(i.x9214 / 100) * 100
                            ELSE i.x9214 END AS x,
                       CASE WHEN i.category = 'public_order' THEN round(i.y9214 / 100) * 100
                            ELSE i.y9214 END AS y
                FROM incidents i WHERE {where}) p),
        k AS (
          SELECT c0, round((y / $2::float8 - abs(c0 % 2)) / 2)::int AS j0,
                 round((y / $2::float8 - abs((c0 + 1) % 2)) / 2)::int AS j1, x, y FROM pts),
        d AS (
          SELECT c0, j0, j1,
                 (x - 1.5 * $1::float8 * c0) ^ 2
                   + (y - $2::float8 * (2 * j0 + abs(c0 % 2))) ^ 2 AS d0,
                 (x - 1.5 * $1::float8 * (c0 + 1)) ^ 2
                   + (y - $2::float8 * (2 * j1 + abs((c0 + 1) % 2))) ^ 2
                   AS d1
          FROM k),
        cells AS (
          SELECT CASE WHEN d0 <= d1 THEN c0 ELSE c0 + 1 END AS i,
                 CASE WHEN d0 <= d1 THEN j0 ELSE j1 END AS j, count(*) AS n
          FROM d GROUP BY 1, 2)
        SELECT json_build_object('type', 'FeatureCollection', 'features',
          coalesce(json_agg(json_build_object(
            'type', 'Feature', 'id', c.i || ',' || c.j,
            'geometry', ST_AsGeoJSON(ST_Transform(ST_SetSRID(ST_Hexagon($1, c.i, c.j), 9214),
                                                  4326), 7)::json,
            'properties', json_build_object('count', c.n, 'i', c.i, 'j', c.j))
            ORDER BY c.i, c.j), '[]'::json))::text AS fc
        FROM cells c
        """, size_m, size_m * math.sqrt(3) / 2, *args)
    out = json.loads(row["fc"])
    out["size_m"] = size_m
    out["crs_of_grid"] = "EPSG:9214"
    return out
