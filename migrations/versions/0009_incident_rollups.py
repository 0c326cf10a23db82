"""Incident dashboard rollups (time-to-resolve histograms, hexagon rollups), kept incrementally.

The exact median time to resolve and the hexagon heatmap at a million reports, without reading
every report:

- ``incident_resolve_hist``: how many resolved reports took a time in each *bucket*
  (``huegis_resolve_bucket``: logarithmic, each bucket 19 % wider than the one before),
  per year and month, per ward and category or all of them (``'*'``), and by one dimension
  at a time (all; channel and priority per month only for all wards and categories, per
  year also per ward or category). The median's bucket is found from these
  counts; only the reports of that bucket are then read, through partial indexes on
  (bucket, group column, seconds), from the nearer end of the bucket.
- ``incident_resolve_median``: the exact median (its one or two middle values) of every local
  day, ISO week and month, all wards, per ward and per category, recomputed by the triggers
  for the periods a statement touches (an advisory lock per period).
- ``incident_rollup_day_all``: the daily figures of all wards, per category and for all of
  them, so that day and week groupings over years read few rows.
- ``incident_hex_rollup``: reports counted in the hexagons of each size of
  :data:`HEX_SIZES` (edge in metres, the ``ST_HexagonGrid`` tiling of EPSG:9214), per year
  (per ward and category or all of them) and per month (all wards, per category or all of
  them: one ward's months at the edges of a period are few reports), from the *public*
  location (sensitive
  categories snapped to the 100 m grid, as ``incidents_public`` shows them). The days at the
  edges of a period are counted from the reports.

All are kept exact by statement-level triggers with transition tables on ``incidents`` (one
upsert per INSERT/UPDATE/DELETE statement, COPY included); small INSERT statements (new
reports) append to delta tables instead, so that concurrent reports never wait for each other
on a shared rollup row; readers add the deltas, ``huegis_incident_dash_compact()`` folds
them in. ``huegis_incident_dash_rebuild()`` rebuilds everything (after a TRUNCATE, or to check
them).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from alembic import op

from layers.incidents import SENSITIVE_CATEGORIES

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Hexagon edges (m) kept in the rollup; gis.incidents.stats.HEX_SIZES must list the same.
HEX_SIZES = (500, 1000, 2000, 5000)
_TZ = "'Asia/Ho_Chi_Minh'"
_SENSITIVE = "x.category IN (" + ", ".join(f"'{c}'" for c in SENSITIVE_CATEGORIES) + ")"
# Periods of a row: local day, month, year (grain 'd', 'm', 'y'); levels: which of ward (1)
# and category (2) a row keeps, the others being '*'.
_PERIOD = {"d": "c.day", "w": "date_trunc('week', c.day)::date",
           "m": "date_trunc('month', c.day)::date", "y": "date_trunc('year', c.day)::date"}
_SPAN = {"d": "interval '1 day'", "w": "interval '7 days'", "m": "interval '1 month'"}


def _grains(grains: str) -> str:
    rows = ", ".join(f"('{g}'::\"char\", {_PERIOD[g]})" for g in grains)
    return f"CROSS JOIN LATERAL (VALUES {rows}) g (grain, period)"



_LEVELS = "CROSS JOIN (VALUES (0::smallint), (1), (2), (3)) l (lvl)"
_WARD = "CASE WHEN l.lvl IN (1, 3) THEN c.ward_code ELSE '*' END"
_CAT = "CASE WHEN l.lvl IN (2, 3) THEN c.category ELSE '*' END"


def _hist(source: str) -> str:
    return f"""
    INSERT INTO incident_resolve_hist AS r
    SELECT g.grain, g.period, l.lvl, {_WARD}, {_CAT}, d.dim, d.value, c.bucket, sum(c.sgn)
    FROM (SELECT (x.created_at AT TIME ZONE {_TZ})::date AS day,
                 coalesce(x.ward_code, '') AS ward_code, x.category, x.channel, x.priority,
                 huegis_resolve_bucket(huegis_resolve_s(x.created_at, x.resolved_at)) AS bucket,
                 x.sgn
          FROM ({source}) x WHERE x.status = 'resolved' AND x.resolved_at IS NOT NULL) c
    {_grains('my')} {_LEVELS}
    CROSS JOIN LATERAL (VALUES ('all', ''), ('channel', c.channel), ('priority', c.priority))
      AS d (dim, value)
    WHERE (l.lvl < 3 OR d.dim = 'all') AND (g.grain = 'y' OR l.lvl = 0 OR d.dim = 'all')
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 HAVING sum(c.sgn) <> 0
    ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
    ON CONFLICT ON CONSTRAINT incident_resolve_hist_pkey DO UPDATE SET n = r.n + excluded.n;"""


def _hex(source: str, delta: bool = False) -> str:
    """Add the cells of ``source`` rows to the hexagon rollup, or (``delta``) append them to
    ``incident_hex_delta`` (no conflicts: new reports never wait for each other)."""
    sizes = ", ".join(f"({s}::float8)" for s in HEX_SIZES)
    target = "incident_hex_delta" if delta else "incident_hex_rollup AS r"
    upsert = ("" if delta else "ON CONFLICT ON CONSTRAINT incident_hex_rollup_pkey "
              "DO UPDATE SET n = r.n + excluded.n")
    return f"""
    INSERT INTO {target}
    SELECT g.grain, g.period, l.lvl, {_WARD}, {_CAT}, s.size::int, h.i, h.j, sum(c.sgn)
    FROM (SELECT (x.created_at AT TIME ZONE {_TZ})::date AS day,
                 coalesce(x.ward_code, '') AS ward_code, x.category, x.sgn,
                 huegis_public_m(x.category, x.x9214) AS px,
                 huegis_public_m(x.category, x.y9214) AS py
          FROM ({source}) x WHERE x.x9214 IS NOT NULL) c
    CROSS JOIN (VALUES {sizes}) s (size)
    CROSS JOIN LATERAL (SELECT * FROM huegis_hex_cell(c.px, c.py, s.size) OFFSET 0) h
    {_grains('my')} {_LEVELS}
    WHERE g.grain = 'y' OR l.lvl IN (0, 2)
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 HAVING sum(c.sgn) <> 0
    ORDER BY 1, 2, 3, 4, 5, 6, 7, 8 {upsert};"""


# Measures of the daily figures of all wards (as in migration 0006's rollups, dimension 'all').
MEASURES = ("n", "n_processed", "n_on_time", "n_timed", "resolve_s", "n_rated", "n_satisfied")


def _days(source: str, delta: bool = False) -> str:
    """Add ``source`` rows to the daily figures of all wards (per category and all of them),
    or (``delta``) append them to ``incident_rollup_day_all_delta``."""
    sums = ", ".join(f"sum({m})" for m in MEASURES)
    sets = ", ".join(f"{m} = r.{m} + excluded.{m}" for m in MEASURES)
    target = "incident_rollup_day_all_delta" if delta else "incident_rollup_day_all AS r"
    upsert = ("" if delta else "ON CONFLICT ON CONSTRAINT incident_rollup_day_all_pkey "
              f"DO UPDATE SET {sets}")
    return f"""
    INSERT INTO {target}
    SELECT c.day, k.category, {sums}
    FROM (SELECT (x.created_at AT TIME ZONE {_TZ})::date AS day, x.category, x.sgn AS n,
                 x.sgn * (x.status IN ('resolved', 'rejected', 'duplicate'))::int AS n_processed,
                 x.sgn * coalesce(x.status = 'resolved' AND x.resolved_at <= x.sla_due_at,
                                  false)::int AS n_on_time,
                 x.sgn * (x.status = 'resolved' AND x.resolved_at IS NOT NULL)::int AS n_timed,
                 x.sgn * CASE WHEN x.status = 'resolved' AND x.resolved_at IS NOT NULL
                              THEN extract(epoch FROM x.resolved_at - x.created_at) ELSE 0 END
                   AS resolve_s,
                 x.sgn * (x.rating IS NOT NULL)::int AS n_rated,
                 x.sgn * coalesce(x.rating >= 4, false)::int AS n_satisfied
          FROM ({source}) x) c
    CROSS JOIN LATERAL (VALUES ('*'), (c.category)) k (category)
    GROUP BY 1, 2 HAVING {' OR '.join(f'sum({m}) <> 0' for m in MEASURES)}
    ORDER BY 1, 2 {upsert};"""


# Folding the deltas into the rollups (one transaction at a time; others skip).
_COMPACT = f"""
  IF pg_try_advisory_xact_lock(9, 0) THEN
    WITH d AS (DELETE FROM incident_hex_delta RETURNING *)
    INSERT INTO incident_hex_rollup AS r
    SELECT grain, period, lvl, ward_code, category, size, i, j, sum(n) FROM d
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 HAVING sum(n) <> 0 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
    ON CONFLICT ON CONSTRAINT incident_hex_rollup_pkey DO UPDATE SET n = r.n + excluded.n;
    WITH d AS (DELETE FROM incident_rollup_day_all_delta RETURNING *)
    INSERT INTO incident_rollup_day_all AS r
    SELECT day, category, {", ".join(f"sum({m})" for m in MEASURES)} FROM d
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT ON CONSTRAINT incident_rollup_day_all_pkey
    DO UPDATE SET {", ".join(f"{m} = r.{m} + excluded.{m}" for m in MEASURES)};
  END IF;"""


def _medians(source: str) -> str:
    """Recompute the exact medians of every local day, ISO week and month that a resolved
    report of ``source`` belongs to, all wards and categories, per ward and per category
    (levels 0, 1, 2), from the reports as this statement left them. A transaction-level
    advisory lock per period (taken in order) serializes concurrent recomputations, so the
    last one sees every committed change."""
    spans = " ".join(f"WHEN '{g}' THEN {v}" for g, v in _SPAN.items())
    periods = f"""(SELECT DISTINCT g.grain, g.period
      FROM (SELECT (x.created_at AT TIME ZONE {_TZ})::date AS day
            FROM ({source}) x WHERE x.status = 'resolved' AND x.resolved_at IS NOT NULL) c
      {_grains('dwm')})"""
    return f"""
    PERFORM pg_advisory_xact_lock(8, hashtext(p.grain::text || p.period::text))
    FROM (SELECT * FROM {periods} p ORDER BY 1, 2) p;
    DELETE FROM incident_resolve_median m USING {periods} p
    WHERE m.grain = p.grain AND m.period = p.period;
    INSERT INTO incident_resolve_median
    SELECT p.grain, p.period,
           (GROUPING(i.ward_code) = 0)::int + 2 * (GROUPING(i.category) = 0)::int,
           CASE WHEN GROUPING(i.ward_code) = 0 THEN coalesce(i.ward_code, '') ELSE '*' END,
           CASE WHEN GROUPING(i.category) = 0 THEN i.category ELSE '*' END, count(*),
           (array_agg(huegis_resolve_s(i.created_at, i.resolved_at) ORDER BY
                      huegis_resolve_s(i.created_at, i.resolved_at)))[(count(*) + 1) / 2:
                                                                        count(*) / 2 + 1]
    FROM {periods} p
    JOIN incidents i ON i.status = 'resolved' AND i.resolved_at IS NOT NULL
      AND i.created_at >= p.period::timestamp AT TIME ZONE {_TZ}
      AND i.created_at < (p.period + CASE p.grain {spans} END) AT TIME ZONE {_TZ}
    GROUP BY GROUPING SETS ((p.grain, p.period), (p.grain, p.period, i.ward_code),
                            (p.grain, p.period, i.category));"""


_NEW = "SELECT *, 1 AS sgn FROM new_rows"
_OLD = "SELECT *, -1 AS sgn FROM old_rows"
_ALL = "SELECT *, 1 AS sgn FROM incidents"
_S = "huegis_resolve_s(created_at, resolved_at)"
_BUCKET = f"huegis_resolve_bucket({_S})"
_COLS = ("created_at", "resolved_at", "ward_code", "category", "channel", "priority")
# Partial indexes on the resolved reports (name: key). Reading the median's bucket of one group
# walks (bucket, group, seconds) in order (from the nearer end); the days at a period's edges
# read (created_at) (migration 0006) or (ward, created_at).
_RESOLVED_INDEXES = {
    "incidents_resolve_b_s": f"{_BUCKET}, {_S}",
    "incidents_resolve_b_ward_s": f"{_BUCKET}, coalesce(ward_code, ''), {_S}",
    "incidents_resolve_b_category_s": f"{_BUCKET}, category, {_S}",
    "incidents_resolve_b_channel_s": f"{_BUCKET}, channel, {_S}",
    "incidents_resolve_b_priority_s": f"{_BUCKET}, priority, {_S}",
    "incidents_resolved_ward_created": "coalesce(ward_code, ''), created_at",
}


def _index(name: str, key: str) -> str:
    return (f"CREATE INDEX {name} ON incidents ({key}) INCLUDE ({', '.join(_COLS)}) "
            "WHERE status = 'resolved';")


UPGRADE = f"""
-- Seconds from filing to resolution, and its histogram bucket: 0 up to 71 s, then bucket b
-- from 60 s · 2^(b/4) (each ×1.19 wider than the one before), the last (96) from 31 years.
CREATE FUNCTION huegis_resolve_s(created timestamptz, resolved timestamptz) RETURNS float8
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN extract(epoch FROM resolved - created)::float8;
CREATE FUNCTION huegis_resolve_bucket(s float8) RETURNS smallint
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN least(greatest(floor(4 * ln(greatest(s, 60) / 60) / ln(2::float8)), 0), 96)::smallint;
-- A coordinate (EPSG:9214 metres) as the public sees it: sensitive categories on the 100 m
-- grid (ST_SnapToGrid rounds half to even, as round(float8) does).
CREATE FUNCTION huegis_public_m(category text, v float8) RETURNS float8
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN CASE WHEN {_SENSITIVE.replace("x.category", "category")} THEN round(v / 100) * 100
              ELSE v END;
-- The hexagon (i, j) of the ST_HexagonGrid/ST_Hexagon tiling of edge s (origin 0,0)
-- containing (x, y): column i is centred at x = 1.5·s·i, row j at y = h·(2j + |i mod 2|),
-- h = s·√3/2. A point between the centres of columns c and c+1 lies in the hexagon of the
-- nearer centre (ties: the lower column).
CREATE FUNCTION huegis_hex_cell(x float8, y float8, s float8) RETURNS TABLE (i int, j int)
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN d0 <= d1 THEN c0 ELSE c0 + 1 END, CASE WHEN d0 <= d1 THEN j0 ELSE j1 END
  FROM (SELECT c0, j0, j1,
               (x - 1.5 * s * c0) ^ 2 + (y - h * (2 * j0 + abs(c0 % 2))) ^ 2 AS d0,
               (x - 1.5 * s * (c0 + 1)) ^ 2 + (y - h * (2 * j1 + abs((c0 + 1) % 2))) ^ 2 AS d1
        FROM (SELECT c0, h, round((y / h - abs(c0 % 2)) / 2)::int AS j0,
                     round((y / h - abs((c0 + 1) % 2)) / 2)::int AS j1
              FROM (SELECT floor(x / (1.5 * s))::int AS c0, s * sqrt(3::float8) / 2 AS h) a) b) c
$$;

CREATE TABLE incident_resolve_hist (
  grain "char" NOT NULL CHECK (grain IN ('m', 'y')),
  period date NOT NULL,
  lvl smallint NOT NULL CHECK (lvl BETWEEN 0 AND 3),
  ward_code text NOT NULL,
  category text NOT NULL,
  dim text NOT NULL CHECK (dim IN ('all', 'channel', 'priority')),
  value text NOT NULL,
  bucket smallint NOT NULL,
  n bigint NOT NULL,
  CONSTRAINT incident_resolve_hist_pkey
    PRIMARY KEY (grain, dim, lvl, ward_code, category, value, period, bucket)
);
CREATE INDEX incident_resolve_hist_by_category ON incident_resolve_hist
  (grain, dim, category, period) WHERE lvl = 3;
CREATE INDEX incident_resolve_hist_period ON incident_resolve_hist (grain, dim, lvl, period);
-- The exact median of each local day, ISO week and month (all, per ward, per category): the
-- one or two middle values (ranks (n-1)/2 and n/2) of the n seconds to resolve.
CREATE TABLE incident_resolve_median (
  grain "char" NOT NULL CHECK (grain IN ('d', 'w', 'm')),
  period date NOT NULL,
  lvl smallint NOT NULL CHECK (lvl BETWEEN 0 AND 2),
  ward_code text NOT NULL,
  category text NOT NULL,
  n integer NOT NULL,
  mid float8[] NOT NULL,
  CONSTRAINT incident_resolve_median_pkey PRIMARY KEY (grain, lvl, ward_code, category, period)
);
CREATE INDEX incident_resolve_median_period ON incident_resolve_median (grain, period);
CREATE TABLE incident_hex_rollup (
  grain "char" NOT NULL CHECK (grain IN ('m', 'y')),
  period date NOT NULL,
  lvl smallint NOT NULL CHECK (lvl BETWEEN 0 AND 3),
  ward_code text NOT NULL,
  category text NOT NULL,
  size integer NOT NULL,
  i integer NOT NULL,
  j integer NOT NULL,
  n bigint NOT NULL,
  CONSTRAINT incident_hex_rollup_pkey
    PRIMARY KEY (grain, size, lvl, ward_code, category, period, i, j)
);
-- What small INSERT statements (new reports) add, waiting to be folded into the rollups by
-- huegis_incident_dash_compact(); readers add both.
CREATE TABLE incident_hex_delta (LIKE incident_hex_rollup);
-- The daily figures of all wards, per category and for all of them ('*'): days and weeks
-- over long periods without reading every ward's rows.
CREATE TABLE incident_rollup_day_all (
  day date NOT NULL,
  category text NOT NULL,
  n bigint NOT NULL DEFAULT 0,
  n_processed bigint NOT NULL DEFAULT 0,
  n_on_time bigint NOT NULL DEFAULT 0,
  n_timed bigint NOT NULL DEFAULT 0,
  resolve_s numeric NOT NULL DEFAULT 0,
  n_rated bigint NOT NULL DEFAULT 0,
  n_satisfied bigint NOT NULL DEFAULT 0,
  CONSTRAINT incident_rollup_day_all_pkey PRIMARY KEY (category, day)
);
CREATE TABLE incident_rollup_day_all_delta (LIKE incident_rollup_day_all);
{chr(10).join(_index(k, v) for k, v in _RESOLVED_INDEXES.items())}
-- Duplicate suggestions for a new report (same category, nearby, recent, not duplicates) in
-- one index scan instead of two bitmaps.
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE INDEX incidents_dup_lookup ON incidents USING gist (category, geom, created_at)
  WHERE status <> 'duplicate';
-- A category's or a ward's reports over a few months, with their EPSG:9214 coordinates
-- (hexagons at the edges of a period, index-only).
CREATE INDEX incidents_category_created_xy ON incidents (category, created_at)
  INCLUDE (x9214, y9214, ward_code);
CREATE INDEX incidents_ward_created_xy ON incidents (ward_code, created_at)
  INCLUDE (x9214, y9214, category);
-- One ward's days (migration 0006's daily rollup is keyed by day first).
CREATE INDEX incident_rollup_day_ward ON incident_rollup_day (dim, ward_code, day);

CREATE FUNCTION huegis_incident_dash() RETURNS trigger LANGUAGE plpgsql SET work_mem = '256MB'
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF (SELECT count(*) FROM new_rows) <= 16 THEN {_hex(_NEW, True)} {_days(_NEW, True)}
    ELSE {_hex(_NEW)} {_days(_NEW)}
    END IF;
    {_hist(_NEW)} {_medians(_NEW)}
  ELSIF TG_OP = 'UPDATE' THEN {_hist(_NEW + " UNION ALL " + _OLD)}
    {_hex(_NEW + " UNION ALL " + _OLD)} {_days(_NEW + " UNION ALL " + _OLD)}
    {_medians(_NEW + " UNION ALL " + _OLD)}
  ELSE {_hist(_OLD)} {_hex(_OLD)} {_days(_OLD)} {_medians(_OLD)}
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER incidents_dash_ins AFTER INSERT ON incidents
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION huegis_incident_dash();
CREATE TRIGGER incidents_dash_upd AFTER UPDATE ON incidents
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION huegis_incident_dash();
CREATE TRIGGER incidents_dash_del AFTER DELETE ON incidents
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION huegis_incident_dash();

CREATE FUNCTION huegis_incident_dash_compact() RETURNS void LANGUAGE plpgsql AS $$
BEGIN {_COMPACT}
END $$;

CREATE FUNCTION huegis_incident_dash_rebuild() RETURNS void LANGUAGE plpgsql
SET work_mem = '256MB' AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(9, 0);
  DELETE FROM incident_resolve_hist;
  DELETE FROM incident_resolve_median;
  DELETE FROM incident_hex_delta;
  DELETE FROM incident_rollup_day_all_delta;
  DELETE FROM incident_rollup_day_all;
  DELETE FROM incident_hex_rollup; {_hist(_ALL)} {_hex(_ALL)} {_days(_ALL)} {_medians(_ALL)}
END $$;
SELECT huegis_incident_dash_rebuild();
ANALYZE incident_resolve_hist, incident_resolve_median, incident_hex_rollup,
  incident_rollup_day_all;
"""

DOWNGRADE = f"""
DROP TRIGGER IF EXISTS incidents_dash_ins ON incidents;
DROP TRIGGER IF EXISTS incidents_dash_upd ON incidents;
DROP TRIGGER IF EXISTS incidents_dash_del ON incidents;
DROP FUNCTION IF EXISTS huegis_incident_dash_rebuild();
DROP FUNCTION IF EXISTS huegis_incident_dash_compact();
DROP FUNCTION IF EXISTS huegis_incident_dash();
DROP INDEX IF EXISTS {", ".join(_RESOLVED_INDEXES)}, incident_rollup_day_ward,
  incidents_dup_lookup, incidents_category_created_xy, incidents_ward_created_xy;
DROP EXTENSION IF EXISTS btree_gist;
DROP TABLE IF EXISTS incident_resolve_hist, incident_resolve_median, incident_hex_rollup,
  incident_hex_delta, incident_rollup_day_all, incident_rollup_day_all_delta;
DROP FUNCTION IF EXISTS huegis_hex_cell(float8, float8, float8);
DROP FUNCTION IF EXISTS huegis_public_m(text, float8);
DROP FUNCTION IF EXISTS huegis_resolve_bucket(float8);
DROP FUNCTION IF EXISTS huegis_resolve_s(timestamptz, timestamptz);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
