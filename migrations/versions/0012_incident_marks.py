"""Incident markers thinned ahead: the newest report per Web Mercator grid cell, per level.

Rendered maps (PNG tiles, WMS GetMap, print) draw a dense point layer with one marker per
marker-sized cell: the newest report's, drawn on top anyway (``gis.render.style``). Computed
per image, that read, keyed and sorted every report in view: 167,000 of them for a 1024-px
WMS image at the zoom-15 scale over central Huế (~400 ms of PostgreSQL). ``incident_marks``
keeps that answer for the grids of cell size ``40075016.69 / 2^level`` metres, levels 19–21
(the 8-pixel cells of 256-pixel zooms 14–16): an image reads the marks of the finest level
whose cells are not larger than its own (15,000 rows, ~10 ms) and thins those. At the zoom
scales of tiles the grids nest, so the markers are exactly the ones of the full computation;
at other WMS scales a marker near a cell's edge may be the neighbour cell's.

- ``incident_marks (level, col, "row")``: the cell; ``id``, ``geom_3857`` and ``status`` of
  its newest report (the *public* location: sensitive categories rounded, migration 0008;
  the status is what the marker's colour says, so an image reads no report at all).
- Kept by statement-level triggers with transition tables on ``incidents`` (COPY included): an
  insert upserts its cells (the newer report wins); a delete, or an update that moves a
  report's public location, takes its cells back and finds each one's newest remaining
  report; a new status recolours the report's markers. The primary key is the only index:
  a report taking over a cell, or changing its status, is a HOT update. Concurrent new
  reports lock a shared cell row only until they commit, in one order (level, col, row): no
  deadlock. Cost to the intake: ~0.1 ms of a report's insert (three upserts).
- ``huegis_incident_marks_rebuild()`` recomputes everything (after a TRUNCATE, or to check).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# Levels 19-21: the 8-pixel cells of 256-pixel zooms 14-16 (incidents are drawn one by one
# from zoom 15; 512-pixel tiles use the next finer level). Coarser levels would cost the
# intake more (every new report takes over its cell at each level) for clusters' zooms.
LEVELS = (19, 21)
WORLD = "40075016.685578488"  # the Web Mercator world's width, metres

_UPGRADE = f"""
CREATE FUNCTION huegis_mark_size(level integer) RETURNS double precision
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT {WORLD} / (2.0 ^ level) $$;

-- The column (or row) of coordinate ``v`` at ``level``, clamped to integers (a map's
-- datasource is first opened with an unbounded box).
CREATE FUNCTION huegis_mark_index(v double precision, level integer) RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT greatest(-2147483647, least(2147483647, floor(v / huegis_mark_size(level))))::integer
$$;

-- The finest stored level whose cells are not larger than ``cell`` metres; NULL when no
-- stored level is fine enough (read the reports themselves), or for no size (as Mapnik asks
-- when it reads a datasource's columns).
CREATE FUNCTION huegis_mark_level(cell double precision) RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN cell > 0 AND ceil(log(2.0, ({WORLD} / cell)::numeric) - 1e-9) <= {LEVELS[1]}
    THEN greatest({LEVELS[0]}, ceil(log(2.0, ({WORLD} / cell)::numeric) - 1e-9)::integer)
  END $$;

-- Read by key ranges (an image's columns and rows at one level), written by key: the
-- primary key is the only index, so a new report taking over a cell is a HOT update (no
-- index touched; pages kept 30 % free for it).
CREATE TABLE incident_marks (
  level smallint NOT NULL,
  col integer NOT NULL,
  "row" integer NOT NULL,
  id bigint NOT NULL,
  geom_3857 geometry(Point, 3857) NOT NULL,
  status text,  -- what the marker's colour says (the style classifies by it)
  PRIMARY KEY (level, col, "row")
) WITH (fillfactor = 70);
COMMENT ON TABLE incident_marks IS
  'Newest report (public location) per Web Mercator cell of 40075016.69 / 2^level m, levels '
  '{LEVELS[0]}-{LEVELS[1]}: thinned markers for rendered maps (migration 0012).';

-- Take back the cells whose marker is one of the reports ``ids`` (at their public points
-- ``geoms``: the cells are found by key) and give each its newest remaining report.
CREATE FUNCTION huegis_incident_marks_drop(ids bigint[], geoms geometry[]) RETURNS void
  LANGUAGE sql AS $$
  WITH gone AS (
    DELETE FROM incident_marks AS m
    USING unnest(ids, geoms) AS o (id, g), generate_series({LEVELS[0]}, {LEVELS[1]}) AS l
    WHERE m.level = l AND m.col = floor(ST_X(o.g) / huegis_mark_size(l))::integer
      AND m."row" = floor(ST_Y(o.g) / huegis_mark_size(l))::integer AND m.id = o.id
    RETURNING m.level, m.col, m."row"
  )
  INSERT INTO incident_marks (level, col, "row", id, geom_3857, status)
  SELECT g.level, g.col, g."row", i.id, i.geom_3857, i.status FROM gone AS g
  CROSS JOIN LATERAL (
    SELECT t.id, t.geom_3857, t.status FROM incidents AS t
    WHERE t.geom_3857 && ST_MakeEnvelope(g.col * huegis_mark_size(g.level),
                                         g."row" * huegis_mark_size(g.level),
                                         (g.col + 1) * huegis_mark_size(g.level),
                                         (g."row" + 1) * huegis_mark_size(g.level), 3857)
      AND floor(ST_X(t.geom_3857) / huegis_mark_size(g.level)) = g.col
      AND floor(ST_Y(t.geom_3857) / huegis_mark_size(g.level)) = g."row"
      AND t.id <> ALL(ids)
    ORDER BY t.id DESC LIMIT 1) AS i
  ORDER BY g.level, g.col, g."row"
  ON CONFLICT (level, col, "row") DO UPDATE
    SET id = EXCLUDED.id, geom_3857 = EXCLUDED.geom_3857, status = EXCLUDED.status
    WHERE EXCLUDED.id > incident_marks.id
$$;

-- (Transition tables are visible to the trigger function's own statements only: the upsert
-- of new reports is written out in it, and again in the rebuild.)
CREATE FUNCTION huegis_incident_marks_trigger() RETURNS trigger
  LANGUAGE plpgsql AS $$
DECLARE
  moved bigint[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    @ADD(new_rows)@;
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM huegis_incident_marks_drop(ARRAY(SELECT id FROM old_rows),
                                       ARRAY(SELECT geom_3857 FROM old_rows));
  ELSE  -- only reports whose public location moved (an edit, a category made sensitive)
    moved := ARRAY(SELECT n.id FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id
                   WHERE o.geom_3857 IS DISTINCT FROM n.geom_3857 ORDER BY n.id);
    IF cardinality(moved) > 0 THEN
      PERFORM huegis_incident_marks_drop(moved, ARRAY(
        SELECT o.geom_3857 FROM old_rows AS o WHERE o.id = ANY(moved) ORDER BY o.id));
      @ADD(new_rows WHERE n.id = ANY(moved))@;
    END IF;
    -- A new status of a report that stayed: its markers change colour (by key, HOT).
    UPDATE incident_marks AS m SET status = n.status
    FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id
         CROSS JOIN generate_series({LEVELS[0]}, {LEVELS[1]}) AS l
    WHERE n.status IS DISTINCT FROM o.status AND n.geom_3857 IS NOT NULL
      AND n.id <> ALL(moved) AND m.level = l
      AND m.col = floor(ST_X(n.geom_3857) / huegis_mark_size(l))::integer
      AND m."row" = floor(ST_Y(n.geom_3857) / huegis_mark_size(l))::integer AND m.id = n.id;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION huegis_incident_marks_rebuild() RETURNS void
  LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE incident_marks;
  @ADD(incidents)@;
END $$;

CREATE TRIGGER incidents_marks_ins AFTER INSERT ON incidents
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION huegis_incident_marks_trigger();
CREATE TRIGGER incidents_marks_upd AFTER UPDATE ON incidents
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION huegis_incident_marks_trigger();
CREATE TRIGGER incidents_marks_del AFTER DELETE ON incidents
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION huegis_incident_marks_trigger();

SELECT huegis_incident_marks_rebuild();
ANALYZE incident_marks;
"""



def _add(rows: str) -> str:
    """The upsert of the cells of ``rows`` (``id``, ``geom_3857``; a relation, optionally
    with a WHERE) at every level: the newest report of each cell wins."""
    relation, _, where = rows.partition(" WHERE ")
    cond = f" AND {where}" if where else ""
    return f"""INSERT INTO incident_marks AS m (level, col, "row", id, geom_3857, status)
    SELECT DISTINCT ON (l, c, r) l, c, r, id, geom_3857, status FROM (
      SELECT l, floor(ST_X(n.geom_3857) / huegis_mark_size(l))::integer AS c,
             floor(ST_Y(n.geom_3857) / huegis_mark_size(l))::integer AS r, n.id, n.geom_3857,
             n.status
      FROM {relation} AS n CROSS JOIN generate_series({LEVELS[0]}, {LEVELS[1]}) AS l
      WHERE n.geom_3857 IS NOT NULL{cond}) AS x
    ORDER BY l, c, r, id DESC
    ON CONFLICT (level, col, "row") DO UPDATE
      SET id = EXCLUDED.id, geom_3857 = EXCLUDED.geom_3857, status = EXCLUDED.status
      WHERE EXCLUDED.id > m.id"""


UPGRADE = _UPGRADE
for _rows in ("new_rows", "incidents", "new_rows WHERE n.id = ANY(moved)"):
    UPGRADE = UPGRADE.replace(f"@ADD({_rows})@", _add(_rows))

DOWNGRADE = """
DROP TRIGGER IF EXISTS incidents_marks_ins ON incidents;
DROP TRIGGER IF EXISTS incidents_marks_upd ON incidents;
DROP TRIGGER IF EXISTS incidents_marks_del ON incidents;
DROP FUNCTION IF EXISTS huegis_incident_marks_rebuild();
DROP FUNCTION IF EXISTS huegis_incident_marks_trigger();
DROP FUNCTION IF EXISTS huegis_incident_marks_drop(bigint[], geometry[]);
DROP TABLE IF EXISTS incident_marks;
DROP FUNCTION IF EXISTS huegis_mark_level(double precision);
DROP FUNCTION IF EXISTS huegis_mark_index(double precision, integer);
DROP FUNCTION IF EXISTS huegis_mark_size(integer);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
