"""Dashboard figures of the operations center, from rollups kept exact by statement triggers:
counts, shares and means from ``incident_rollup_month``/``incident_rollup_day`` (migration
0006); the exact median time to resolve from the histograms ``incident_resolve_hist`` and the
reports of the median's bucket only; hexagon heatmaps from ``incident_hex_rollup`` (migration
0009) and the reports of the days at a period's edges.

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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

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
        if self.ward:  # the column itself, so that its indexes and statistics apply
            conds.append(f"i.ward_code = {arg(self.ward)}")
        elif self.ward is not None:  # '': reports outside every ward
            conds.append("i.ward_code IS NULL")
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
    if q.group_by in ("day", "week") and q.ward is None:
        # Days of all wards (per category or all of them), with what new reports added.
        rows = await conn.fetch(
            f"""
            SELECT {key_day} AS key, {sums} FROM (
              SELECT * FROM incident_rollup_day_all
              UNION ALL SELECT * FROM incident_rollup_day_all_delta) d
            WHERE d.category = $1 AND ($2::date IS NULL OR d.day >= $2)
              AND ($3::date IS NULL OR d.day <= $3)
            GROUP BY key HAVING sum(n) <> 0 ORDER BY key
            """, q.category or "*", q.start, q.end)
        return await _figures_out(conn, q, rows, median)
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
    return await _figures_out(conn, q, rows, median)


async def _custom_plans(conn: asyncpg.Connection | asyncpg.Pool,
                        fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """``fn(conn, *args)`` with every statement planned for its own parameters: after five
    runs of a prepared statement PostgreSQL may switch to a generic plan, which cannot see
    that a day range is short or a bucket small (up to 0.7 s at 1M instead of 50 ms)."""
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as c:
            return await _custom_plans(c, fn, *args)
    async with conn.transaction():
        await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        return await fn(conn, *args)


async def _figures_out(conn: asyncpg.Connection | asyncpg.Pool, q: StatsQuery,
                       rows: list[asyncpg.Record], median: bool) -> list[dict]:
    medians = await _custom_plans(conn, _medians, q) if median else {}
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



# --- Periods: whole years and months from the rollups, the days at the edges from reports ---

_FAR_PAST, _FAR_FUTURE = dt.date(1, 1, 1), dt.date(9999, 12, 31)
_EARLIEST, _LATEST = dt.date(1900, 1, 1), dt.date(9000, 1, 1)
_LOCAL_TZ = dt.timezone(dt.timedelta(hours=7))  # Asia/Ho_Chi_Minh (no daylight saving)


def _floor(day: dt.date, grain: str) -> dt.date:
    return day.replace(month=1, day=1) if grain == "y" else day.replace(day=1)


def _ceil(day: dt.date, grain: str) -> dt.date:
    first = _floor(day, grain)
    if first == day:
        return day
    return first.replace(year=first.year + 1) if grain == "y" else _next_month(first)


def split_period(start: dt.date | None, end: dt.date | None, grains: str
                 ) -> tuple[list[tuple[str, dt.date, dt.date]], list[tuple[dt.date, dt.date]]]:
    """Cover the local days [start, end] (inclusive; None: unbounded) with whole periods of
    the coarsest ``grains`` first ('y' years, 'm' months, 'd' days, coarsest first), and what
    is left as day ranges. Periods are [first, end) pairs.

    >>> segs, days = split_period(dt.date(2023, 3, 15), dt.date(2025, 10, 10), "ym")
    >>> [(g, a.isoformat(), b.isoformat()) for g, a, b in segs]  # doctest: +NORMALIZE_WHITESPACE
    [('y', '2024-01-01', '2025-01-01'), ('m', '2023-04-01', '2024-01-01'),
     ('m', '2025-01-01', '2025-10-01')]
    >>> [(a.isoformat(), b.isoformat()) for a, b in days]
    [('2023-03-15', '2023-04-01'), ('2025-10-01', '2025-10-11')]
    >>> split_period(None, None, "y")
    ([('y', datetime.date(1, 1, 1), datetime.date(9999, 12, 31))], [])
    """
    lo = start or _FAR_PAST
    hi = end + dt.timedelta(days=1) if end else _FAR_FUTURE
    segs: list[tuple[str, dt.date, dt.date]] = []
    rest = [(lo, hi)]
    for grain in grains:
        if grain == "d":
            segs += [("d", a, b) for a, b in rest]
            return segs, []
        left = []
        for a, b in rest:
            first = a if a == _FAR_PAST else _ceil(a, grain)
            last = b if b == _FAR_FUTURE else _floor(b, grain)
            if first < last:
                segs.append((grain, first, last))
                left += [(x, y) for x, y in ((a, first), (last, b)) if x < y]
            else:
                left.append((a, b))
        rest = left
    return segs, rest


def _local_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=_LOCAL_TZ)


def _ranges(days: list[tuple[dt.date, dt.date]]) -> list[dt.datetime | None]:
    """Up to two local day ranges as four timestamps (None for a range not used)."""
    assert len(days) <= 2
    out: list[dt.datetime | None] = []
    for a, b in days:  # (the far past and future clamped to what timestamps hold)
        out += [_local_start(max(a, _EARLIEST)), _local_start(min(b, _LATEST))]
    return out + [None] * (4 - len(out))


def _in_ranges(where: str) -> str:
    """The reports (alias i) filed in the two ranges $1–$2 and $3–$4 and matching ``where``:
    one index range scan each (an OR of both would let the planner scan the whole period)."""
    return " UNION ALL ".join(
        f"SELECT i.* FROM incidents i WHERE i.created_at >= ${a} AND i.created_at < ${b} "
        f"AND {where}" for a, b in ((1, 2), (3, 4)))


def _level(q: StatsQuery) -> tuple[int, str | None, str | None]:
    """The rollups' level for a query (1: per ward, 2: per category, 3: both, 0: neither)
    and the ward and category a row must have (None: any, each row a group)."""
    by_ward = q.ward is not None or q.group_by == "ward"
    by_cat = q.category is not None or q.group_by == "category"
    ward = q.ward if q.ward is not None else (None if by_ward else "*")
    cat = q.category if q.category is not None else (None if by_cat else "*")
    return int(by_ward) + 2 * int(by_cat), ward, cat


# --- The exact median time to resolve ---

# A group's key in incident_resolve_hist (alias h).
_HIST_KEY = {"ward": "h.ward_code", "category": "h.category", "channel": "h.value",
             "priority": "h.value", "status": "'resolved'", None: "'all'"}
# Condition picking a group's reports while reading its median's bucket (t: the wanted rows).
_GROUP_COND = {"ward": "coalesce(i.ward_code, '') = t.key", "category": "i.category = t.key",
               "channel": "i.channel = t.key", "priority": "i.priority = t.key",
               "status": "true", None: "true"}
_RESOLVED = "i.status = 'resolved' AND i.resolved_at IS NOT NULL"
_SECONDS = "huegis_resolve_s(i.created_at, i.resolved_at)"


async def _histograms(conn: asyncpg.Connection | asyncpg.Pool, q: StatsQuery
                      ) -> dict[object, dict[int, int]]:
    """Resolved reports per group (not by period) and bucket of their time to resolve
    (migration 0009): whole years and months from ``incident_resolve_hist``, the days at the
    edges counted from the reports."""
    lvl, ward, cat = _level(q)
    dim = q.group_by if q.group_by in ("channel", "priority") else "all"
    # channel and priority: per month for all wards and categories only, per year also per
    # ward or category, never per ward and category (then counted from the reports)
    grains = "ym" if lvl == 0 or dim == "all" else "y" if lvl < 3 else ""
    if grains:
        segs, days = split_period(q.start, q.end, grains)
    else:
        segs, days = [], [(q.start or _FAR_PAST,
                           q.end + dt.timedelta(days=1) if q.end else _FAR_FUTURE)]
    hist: dict[object, dict[int, int]] = {}

    def add(rows: list[asyncpg.Record]) -> None:
        for r in rows:
            h = hist.setdefault(r["key"], {})
            h[r["b"]] = h.get(r["b"], 0) + int(r["n"])

    if segs:
        # only the conditions that apply (a generic "$n IS NULL OR …" plan reads more rows)
        conds, extra = [], []
        for column, value in (("ward_code", ward), ("category", cat)):
            if value is not None:
                extra.append(value)
                conds.append(f"AND h.{column} = ${5 + len(extra)}")
        add(await conn.fetch(
            f"""
            SELECT {_HIST_KEY[q.group_by]} AS key, h.bucket AS b, sum(h.n) AS n
            FROM unnest($1::text[], $2::date[], $3::date[]) AS s (grain, first, last)
            JOIN incident_resolve_hist h ON h.grain = s.grain::"char" AND h.period >= s.first
              AND h.period < s.last
            WHERE h.dim = $4 AND h.lvl = $5 {" ".join(conds)}
            GROUP BY 1, 2
            """, [g for g, _, _ in segs], [a for _, a, _ in segs], [b for _, _, b in segs],
            dim, lvl, *extra))
    for i in range(0, len(days), 2):
        where, args = q.where(5)
        add(await conn.fetch(
            f"SELECT {_RAW_KEY[q.group_by]} AS key, huegis_resolve_bucket({_SECONDS}) AS b, "
            f"count(*) AS n FROM ({_in_ranges(where)}) i WHERE {_RESOLVED} "
            "GROUP BY 1, 2", *_ranges(days[i:i + 2]), *args))
    return hist


def _wanted(hist: dict[object, dict[int, int]]) -> list[tuple[object, int, int, int, bool]]:
    """For each group, the rows to read: (key, bucket, offset, how many, upwards), the offset
    counted from the nearer end of the bucket (upwards: from its smallest value). The median
    is the mean of ranks (n-1)//2 and n//2 (0-based).

    >>> _wanted({"a": {3: 2, 5: 3, 9: 1}})
    [('a', 5, 0, 2, True)]
    >>> _wanted({"b": {1: 2, 2: 2}, "c": {4: 10}})
    [('b', 1, 0, 1, False), ('b', 2, 0, 1, True), ('c', 4, 4, 2, True)]
    """
    out = []

    def read(key: object, b: int, off: int, cnt: int, size: int) -> None:
        up = off <= size - off - cnt
        out.append((key, b, off if up else size - off - cnt, cnt, up))

    for key, h in hist.items():
        n = sum(h.values())
        if n <= 0:
            continue
        lo, hi = (n - 1) // 2, n // 2
        below = 0
        for b in sorted(h):
            c = h[b]
            if c and below <= lo < below + c:
                if hi < below + c:
                    read(key, b, lo - below, hi - lo + 1, c)
                else:  # rank hi is the first of the next non-empty bucket
                    nxt = min(x for x in h if x > b and h[x])
                    read(key, b, lo - below, 1, c)
                    read(key, nxt, 0, 1, h[nxt])
                break
            below += c
    return out


_PERIOD_GRAIN = {"day": "d", "week": "w", "month": "m"}


def _full_periods(q: StatsQuery) -> tuple[dt.date, dt.date, list[tuple[dt.date, dt.date]]]:
    """The whole days, ISO weeks or months of ``q.group_by`` inside the period, as
    [first, end), and the partial ones at its edges as day ranges.

    >>> _full_periods(StatsQuery(dt.date(2025, 3, 5), dt.date(2025, 6, 3), group_by="week"))
    (datetime.date(2025, 3, 10), datetime.date(2025, 6, 2), [(datetime.date(2025, 3, 5), \
datetime.date(2025, 3, 10)), (datetime.date(2025, 6, 2), datetime.date(2025, 6, 4))])
    """
    lo = q.start or _FAR_PAST
    hi = q.end + dt.timedelta(days=1) if q.end else _FAR_FUTURE
    if q.group_by == "day":
        return lo, hi, []
    if q.group_by == "week":
        first = lo if lo == _FAR_PAST else lo + dt.timedelta(days=-lo.weekday() % 7)
        last = hi if hi == _FAR_FUTURE else hi - dt.timedelta(days=hi.weekday())
    else:
        first = lo if lo == _FAR_PAST else _ceil(lo, "m")
        last = hi if hi == _FAR_FUTURE else _floor(hi, "m")
    if first >= last:
        return first, first, [(lo, hi)]
    return first, last, [(a, b) for a, b in ((lo, first), (last, hi)) if a < b]


_MID = (f"(array_agg({_SECONDS} ORDER BY {_SECONDS}))[(count(*) + 1) / 2:count(*) / 2 + 1]")


async def _raw_medians(conn: asyncpg.Connection | asyncpg.Pool, q: StatsQuery,
                       days: list[tuple[dt.date, dt.date]]) -> dict:
    """Exact medians per group counted from the reports of the day ranges ``days``."""
    out: dict = {}
    for i in range(0, len(days), 2):
        where, args = q.where(5)
        for r in await conn.fetch(
                f"SELECT {_RAW_KEY[q.group_by]} AS key, {_MID} AS mid "
                f"FROM ({_in_ranges(where)}) i WHERE {_RESOLVED} GROUP BY 1",
                *_ranges(days[i:i + 2]), *args):
            out[r["key"]] = (r["mid"][0] + r["mid"][-1]) / 2
    return out


async def _period_medians(conn: asyncpg.Connection | asyncpg.Pool, q: StatsQuery) -> dict:
    """Medians per day, week or month: whole periods from ``incident_resolve_median`` (kept
    exact by the triggers), partial ones at the edges (and per ward and category together)
    from the reports."""
    lvl, ward, cat = _level(q)
    first, last, edges = _full_periods(q)
    if lvl == 3:
        return await _raw_medians(conn, q, [(q.start or _FAR_PAST, q.end + dt.timedelta(
            days=1) if q.end else _FAR_FUTURE)])
    out = await _raw_medians(conn, q, edges) if edges else {}
    if first < last:
        for r in await conn.fetch(
                "SELECT period, mid FROM incident_resolve_median WHERE grain = $1::text::\"char\" "
                "AND lvl = $2 AND ward_code = $3 AND category = $4 AND period >= $5 "
                "AND period < $6", _PERIOD_GRAIN[q.group_by or ""], lvl, ward, cat, first, last):
            out[r["period"]] = (r["mid"][0] + r["mid"][-1]) / 2
    return out


async def _medians(conn: asyncpg.Connection | asyncpg.Pool, q: StatsQuery) -> dict:
    """The exact median seconds to resolve per group. By day, week or month: see
    :func:`_period_medians`. Otherwise the median's bucket from the histograms, then only
    that bucket's reports of the group, read in order through an index on (bucket, group,
    seconds) from the nearer end up to the median's rank."""
    if q.group_by in _PERIOD_GRAIN:
        return await _period_medians(conn, q)
    hist = await _histograms(conn, q)
    wanted = _wanted(hist)
    if not wanted:
        return {}
    where, args = q.where(6)
    read = f"""SELECT {_SECONDS} AS s FROM incidents i
          WHERE {_RESOLVED} AND huegis_resolve_bucket({_SECONDS}) = t.b
            AND {_GROUP_COND[q.group_by]} AND {where}"""
    rows = await conn.fetch(
        f"""
        SELECT t.idx, v.s FROM unnest($1::text[], $2::int2[], $3::int[], $4::int[],
                                      $5::bool[]) WITH ORDINALITY AS t (key, b, off, cnt, up, idx)
        CROSS JOIN LATERAL (
          ({read} AND t.up ORDER BY 1 OFFSET t.off LIMIT t.cnt)
          UNION ALL
          ({read} AND NOT t.up ORDER BY 1 DESC OFFSET t.off LIMIT t.cnt)) v
        ORDER BY t.idx, v.s
        """, [str(w[0]) for w in wanted], [w[1] for w in wanted], [w[2] for w in wanted],
        [w[3] for w in wanted], [w[4] for w in wanted], *args)
    values: dict[object, list[float]] = {}
    for r in rows:
        values.setdefault(wanted[r["idx"] - 1][0], []).append(float(r["s"]))
    out = {}
    for key, vals in values.items():
        n = sum(hist[key].values())
        mid = vals[:1] if n % 2 else vals[:2]
        out[key] = (mid[0] + mid[-1]) / 2
    return out


# --- Hexagon heatmaps ---

# Hexagon edges (m) kept in incident_hex_rollup (migration 0009); others are refused.
HEX_SIZES = (500, 1000, 2000, 5000)


# GeoJSON geometry (WGS 84, 7 decimals) of each hexagon drawn so far, by (size, i, j): cells
# never change, so each worker transforms a hexagon once.
_HEX_GEOMETRY: dict[tuple[int, int, int], str] = {}
_HEX_CACHE_MAX = 200_000


async def _hex_geometries(conn: asyncpg.Connection | asyncpg.Pool, size: int,
                          cells: list[tuple[int, int]]) -> None:
    missing = [c for c in cells if (size, *c) not in _HEX_GEOMETRY]
    if not missing:
        return
    if len(_HEX_GEOMETRY) + len(missing) > _HEX_CACHE_MAX:
        _HEX_GEOMETRY.clear()
    for r in await conn.fetch(
            "SELECT t.i, t.j, ST_AsGeoJSON(ST_Transform(ST_SetSRID(ST_Hexagon($1, t.i, t.j), "
            "9214), 4326), 7) AS g FROM unnest($2::int[], $3::int[]) AS t (i, j)",
            size, [c[0] for c in missing], [c[1] for c in missing]):
        _HEX_GEOMETRY[size, r["i"], r["j"]] = r["g"]


async def hexbins(conn: asyncpg.Connection | asyncpg.Pool, q: StatsQuery,
                  size_m: float = 500.0) -> str:
    """A hexagon heatmap as GeoJSON FeatureCollection text (see :func:`_hexbins`)."""
    if size_m not in HEX_SIZES:
        raise InvalidParameter("size: hexagon edge in metres, one of "
                               + ", ".join(str(s) for s in HEX_SIZES))
    return await _custom_plans(conn, _hexbins, q, int(size_m))


async def _hexbins(conn: asyncpg.Connection, q: StatsQuery, size: int) -> str:
    """A hexagon heatmap as GeoJSON FeatureCollection text: hexagons of ``size`` metres
    (edge, one of :data:`HEX_SIZES`) of the ``ST_HexagonGrid``/``ST_Hexagon`` tiling of
    VN-2000 / TM-3 107-00 (EPSG:9214, origin 0,0), with the count of reports in each
    (``{count, i, j}``), at their public locations (sensitive categories on the 100 m grid, as
    ``incidents_public`` shows them). Each report is counted once, in the hexagon containing
    it (``huegis_hex_cell``); empty hexagons are left out. Whole years (and, without a ward,
    whole months) come from ``incident_hex_rollup`` (and ``incident_hex_delta``,
    what new reports added since the last compaction), the rest from the reports."""
    lvl, ward, cat = _level(q)
    # months are kept for all wards (levels 0 and 2), years for every level
    segs, days = split_period(q.start, q.end, "ym" if lvl in (0, 2) else "y")
    where, args = q.where(10)
    rows = await conn.fetch(
        f"""
        SELECT ci, cj, sum(n) AS n FROM (
          SELECT h.i AS ci, h.j AS cj, h.n
          FROM unnest($5::text[], $6::date[], $7::date[]) AS s (grain, first, last)
          JOIN (SELECT * FROM incident_hex_rollup UNION ALL SELECT * FROM incident_hex_delta) h
            ON h.grain = s.grain::"char" AND h.period >= s.first AND h.period < s.last
          WHERE h.size = $8 AND h.lvl = $9 AND h.ward_code = ${10 + len(args)}
            AND h.category = ${11 + len(args)}
          UNION ALL
          SELECT c.i, c.j, 1 FROM ({_in_ranges(where)}) i
          CROSS JOIN LATERAL huegis_hex_cell(huegis_public_m(i.category, i.x9214),
                                             huegis_public_m(i.category, i.y9214), $8) c
          WHERE i.x9214 IS NOT NULL) u
        GROUP BY 1, 2 HAVING sum(n) <> 0 ORDER BY 1, 2
        """, *_ranges(days), [g for g, _, _ in segs], [a for _, a, _ in segs],
        [b for _, _, b in segs], size, lvl, *args, ward, cat)
    await _hex_geometries(conn, size, [(r["ci"], r["cj"]) for r in rows])
    features = ",".join(
        f'{{"type":"Feature","id":"{r["ci"]},{r["cj"]}","geometry":'
        f'{_HEX_GEOMETRY[size, r["ci"], r["cj"]]},"properties":{{"count":{r["n"]},'
        f'"i":{r["ci"]},"j":{r["cj"]}}}}}' for r in rows)
    return (f'{{"type":"FeatureCollection","features":[{features}],"size_m":{size},'
            '"crs_of_grid":"EPSG:9214"}')
