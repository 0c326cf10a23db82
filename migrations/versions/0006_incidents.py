"""Incident service: report tokens, assignment, duplicates, photos, idempotency keys, the
gazetteer (landmarks, streets), daily rollups for the dashboard, the public view.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Well-known places that OSM's points of interest do not name the way people say them
# (approximate positions, WGS 84 lon/lat; curated for the gazetteer).
LANDMARKS = (
    ("Đại Nội", "Hoàng thành Huế, Imperial City", 107.5775, 16.4690),
    ("Ngọ Môn", "Noon Gate", 107.5786, 16.4672),
    ("Chợ Đông Ba", "Dong Ba Market", 107.5881, 16.4727),
    ("Cầu Trường Tiền", "Truong Tien Bridge", 107.5905, 16.4637),
    ("Chùa Thiên Mụ", "Thien Mu Pagoda", 107.5448, 16.4534),
    ("Ga Huế", "Hue Railway Station", 107.5778, 16.4566),
)

# Measures of the rollups, and how a report contributes to them (sign: +1 new, -1 old row).
MEASURES = ("n", "n_processed", "n_on_time", "n_timed", "resolve_s", "n_rated", "n_satisfied")
_CONTRIB = """
  SELECT (r.created_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS day,
         coalesce(r.ward_code, '') AS ward_code, r.category, d.dim, d.value,
         r.sgn AS n,
         r.sgn * (r.status IN ('resolved', 'rejected', 'duplicate'))::int AS n_processed,
         r.sgn * coalesce(r.status = 'resolved' AND r.resolved_at <= r.sla_due_at, false)::int
           AS n_on_time,
         r.sgn * (r.status = 'resolved' AND r.resolved_at IS NOT NULL)::int AS n_timed,
         r.sgn * CASE WHEN r.status = 'resolved' AND r.resolved_at IS NOT NULL
                      THEN extract(epoch FROM r.resolved_at - r.created_at) ELSE 0 END
           AS resolve_s,
         r.sgn * (r.rating IS NOT NULL)::int AS n_rated,
         r.sgn * coalesce(r.rating >= 4, false)::int AS n_satisfied
  FROM ({source}) r
  CROSS JOIN LATERAL (VALUES ('all', ''), ('status', r.status), ('channel', r.channel),
                             ('priority', r.priority)) AS d (dim, value)
"""
_NEW = "SELECT *, 1 AS sgn FROM new_rows"
_OLD = "SELECT *, -1 AS sgn FROM old_rows"
_ALL = "SELECT *, 1 AS sgn FROM incidents"


def _upsert(source: str) -> str:
    """Add the contributions of ``source`` rows to the day and the month rollups."""
    sums = ", ".join(f"sum({m})" for m in MEASURES)
    sets = ", ".join(f"{m} = r.{m} + excluded.{m}" for m in MEASURES)
    out = ""
    for table, period in (("incident_rollup_day", "day"),
                          ("incident_rollup_month", "date_trunc('month', day)::date")):
        out += f"""
    INSERT INTO {table} AS r
    SELECT {period}, ward_code, category, dim, value, {sums}
    FROM ({_CONTRIB.format(source=source)}) c
    GROUP BY 1, 2, 3, 4, 5 HAVING {' OR '.join(f'sum({m}) <> 0' for m in MEASURES)}
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ON CONSTRAINT {table}_pkey DO UPDATE SET {sets};"""
    return out


def _rollup_table(name: str, period: str) -> str:
    return f"""
CREATE TABLE {name} (
  {period} date NOT NULL,
  ward_code text NOT NULL,
  category text NOT NULL,
  dim text NOT NULL CHECK (dim IN ('all', 'status', 'channel', 'priority')),
  value text NOT NULL,
  n bigint NOT NULL DEFAULT 0,
  n_processed bigint NOT NULL DEFAULT 0,
  n_on_time bigint NOT NULL DEFAULT 0,
  n_timed bigint NOT NULL DEFAULT 0,
  resolve_s numeric NOT NULL DEFAULT 0,
  n_rated bigint NOT NULL DEFAULT 0,
  n_satisfied bigint NOT NULL DEFAULT 0,
  CONSTRAINT {name}_pkey PRIMARY KEY (dim, {period}, ward_code, category, value)
);"""


UPGRADE = f"""
ALTER TABLE incidents
  ADD COLUMN token text UNIQUE,
  ADD COLUMN assignee text,
  ADD COLUMN duplicate_of bigint REFERENCES incidents (id),
  ADD COLUMN device_id text,
  ADD COLUMN account_id text,
  ADD COLUMN attributes jsonb NOT NULL DEFAULT '{{}}',
  -- VN-2000 / TM-3 107-00 (EPSG:9214) metres, for hexagon heatmaps without a transform per
  -- request.
  ADD COLUMN x9214 double precision GENERATED ALWAYS AS (ST_X(ST_Transform(geom, 9214))) STORED,
  ADD COLUMN y9214 double precision GENERATED ALWAYS AS (ST_Y(ST_Transform(geom, 9214))) STORED;
CREATE INDEX incidents_duplicate_of ON incidents (duplicate_of) WHERE duplicate_of IS NOT NULL;
CREATE INDEX incidents_category_created ON incidents (category, created_at);
CREATE INDEX incidents_open_due ON incidents (ward_code, sla_due_at)
  WHERE status IN ('received', 'assigned', 'in_progress', 'reopened');
CREATE INDEX incidents_resolved_created ON incidents (created_at)
  INCLUDE (ward_code, category, channel, priority, resolved_at)
  WHERE status = 'resolved';
CREATE INDEX incident_events_id_incident ON incident_events (id) INCLUDE (incident_id);

-- The wards cut into small pieces (at most 64 vertices, GiST-indexed): routing a point is a
-- sub-millisecond lookup instead of a test against a whole ward outline. Kept in step with
-- admin_units by a row trigger.
CREATE TABLE ward_pieces (
  id bigserial PRIMARY KEY,
  gso_code text NOT NULL,
  name text NOT NULL,
  geom geometry(Geometry, 4326) NOT NULL
);
CREATE INDEX ward_pieces_geom ON ward_pieces USING gist (geom);
CREATE INDEX ward_pieces_code ON ward_pieces (gso_code);
CREATE FUNCTION huegis_ward_pieces() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    DELETE FROM ward_pieces WHERE gso_code = OLD.gso_code;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.level = 'ward' THEN
    INSERT INTO ward_pieces (gso_code, name, geom)
    SELECT NEW.gso_code, NEW.name, ST_Subdivide(NEW.geom, 64);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER admin_units_ward_pieces AFTER INSERT OR UPDATE OR DELETE ON admin_units
  FOR EACH ROW EXECUTE FUNCTION huegis_ward_pieces();
INSERT INTO ward_pieces (gso_code, name, geom)
  SELECT gso_code, name, ST_Subdivide(geom, 64) FROM admin_units WHERE level = 'ward';

-- Retries of a submission with the same Idempotency-Key return the first report.
CREATE TABLE incident_idempotency (
  key text PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 200),
  request_hash text NOT NULL,
  incident_id bigint REFERENCES incidents (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Photos: the stored files are stripped of EXIF/GPS; ``meta`` keeps what was removed (staff).
CREATE TABLE incident_photos (
  id text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{{32}}$'),
  incident_id bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
  content_type text NOT NULL,
  width integer NOT NULL,
  height integer NOT NULL,
  bytes integer NOT NULL,
  meta jsonb NOT NULL DEFAULT '{{}}',
  actor text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incident_photos_incident ON incident_photos (incident_id, created_at);

-- Gazetteer: curated landmarks, streets named in addresses, wards and points of interest.
CREATE TABLE gazetteer_landmarks (
  id serial PRIMARY KEY,
  name text NOT NULL UNIQUE,
  alt_names text,
  source text NOT NULL DEFAULT 'curated',
  geom geometry(Point, 4326) NOT NULL
);

-- A street's position in a ward: the centre of the addressed parcels and points on it
-- (refreshed by gis.gazetteer.refresh after loading data).
CREATE MATERIALIZED VIEW gazetteer_streets AS
  WITH named AS (
    SELECT regexp_replace(split_part(address, ',', 1), '^[0-9]+(/[0-9]+)?[A-Za-z]? +', '')
             AS street, ward_code, ST_PointOnSurface(geom) AS g
    FROM land_parcels WHERE address ~ '^[0-9]+(/[0-9]+)?[A-Za-z]? +[^0-9]'
    UNION ALL
    SELECT regexp_replace(address, '^[0-9]+(/[0-9]+)?[A-Za-z]? +', ''), ward_code, geom
    FROM tourism_pois WHERE address ~ '^[0-9]+(/[0-9]+)?[A-Za-z]? +[^0-9]'
  )
  SELECT row_number() OVER (ORDER BY street, ward_code)::int AS id, street AS name, ward_code,
         ST_Centroid(ST_Collect(g))::geometry(Point, 4326) AS geom, count(*)::int AS n
  FROM named WHERE ward_code IS NOT NULL AND length(street) BETWEEN 2 AND 80
  GROUP BY street, ward_code
  WITH DATA;
CREATE UNIQUE INDEX gazetteer_streets_id ON gazetteer_streets (id);

CREATE VIEW gazetteer AS
  SELECT 'ward' AS kind, gso_code AS id, name, short_name AS alt_names, gso_code AS ward_code,
         ST_PointOnSurface(geom) AS geom, 1 AS rank, 0 AS weight
  FROM admin_units WHERE level = 'ward'
  UNION ALL
  SELECT 'landmark', 'L' || id, name, alt_names, NULL, geom, 2, 0 FROM gazetteer_landmarks
  UNION ALL
  SELECT 'street', 'S' || id, name, NULL, ward_code, geom, 3, n FROM gazetteer_streets
  UNION ALL
  SELECT 'tourism', 'T' || id, name, name_en, ward_code, geom, 4, 0 FROM tourism_pois
  UNION ALL
  SELECT 'health', 'H' || id, name, NULL, ward_code, geom, 4, 0 FROM health_facilities
  UNION ALL
  SELECT 'education', 'E' || id, name, NULL, ward_code, geom, 4, 0 FROM education_facilities;

-- Figures per local day and per month, ward and category, by one dimension at a time ('all',
-- status, channel, priority: each report counts once in each), kept exact by statement
-- triggers with transition tables: one upsert per INSERT/UPDATE/DELETE statement, COPY
-- included. Months answer long periods from few rows; days cover the edges.
{_rollup_table("incident_rollup_day", "day")}
{_rollup_table("incident_rollup_month", "month")}

CREATE FUNCTION huegis_incident_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN {_upsert(_NEW)}
  ELSIF TG_OP = 'UPDATE' THEN {_upsert(_NEW + " UNION ALL " + _OLD)}
  ELSE {_upsert(_OLD)}
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER incidents_rollup_ins AFTER INSERT ON incidents
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION huegis_incident_rollup();
CREATE TRIGGER incidents_rollup_upd AFTER UPDATE ON incidents
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION huegis_incident_rollup();
CREATE TRIGGER incidents_rollup_del AFTER DELETE ON incidents
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION huegis_incident_rollup();

-- Rebuild the rollups from scratch (after a TRUNCATE, or to check them).
CREATE FUNCTION huegis_incident_rollup_rebuild() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM incident_rollup_day;
  DELETE FROM incident_rollup_month; {_upsert(_ALL)}
END $$;
SELECT huegis_incident_rollup_rebuild();

-- What the public may see of a report: no reporter, no token; public-order locations rounded
-- to a 100 m grid in VN-2000 / TM-3 107-00 (EPSG:9214).
CREATE VIEW incidents_public AS
  SELECT id, ref, category, description, status, priority, channel,
         CASE WHEN category = 'public_order' THEN NULL ELSE address END AS address,
         ward_code, created_at, updated_at, resolved_at, sla_due_at, rating, source,
         CASE WHEN category = 'public_order'
              THEN ST_Transform(ST_SnapToGrid(ST_Transform(geom, 9214), 100), 4326)
              ELSE geom END::geometry(Point, 4326) AS geom
  FROM incidents;
"""

DOWNGRADE = """
DROP VIEW IF EXISTS incidents_public, gazetteer;
DROP MATERIALIZED VIEW IF EXISTS gazetteer_streets;
DROP TRIGGER IF EXISTS incidents_rollup_ins ON incidents;
DROP TRIGGER IF EXISTS incidents_rollup_upd ON incidents;
DROP TRIGGER IF EXISTS incidents_rollup_del ON incidents;
DROP FUNCTION IF EXISTS huegis_incident_rollup_rebuild();
DROP FUNCTION IF EXISTS huegis_incident_rollup();
DROP TRIGGER IF EXISTS admin_units_ward_pieces ON admin_units;
DROP FUNCTION IF EXISTS huegis_ward_pieces();
DROP TABLE IF EXISTS incident_rollup_day, incident_rollup_month, gazetteer_landmarks,
  incident_photos, incident_idempotency, ward_pieces;
DROP INDEX IF EXISTS incident_events_id_incident, incidents_resolved_created, incidents_open_due,
  incidents_category_created, incidents_duplicate_of;
ALTER TABLE incidents DROP COLUMN IF EXISTS token, DROP COLUMN IF EXISTS assignee,
  DROP COLUMN IF EXISTS duplicate_of, DROP COLUMN IF EXISTS device_id,
  DROP COLUMN IF EXISTS account_id, DROP COLUMN IF EXISTS attributes,
  DROP COLUMN IF EXISTS x9214, DROP COLUMN IF EXISTS y9214;
"""


def upgrade() -> None:
    op.execute(UPGRADE)
    op.get_bind().execute(
        sa.text("INSERT INTO gazetteer_landmarks (name, alt_names, geom) VALUES "
                "(:name, :alt, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"),
        [{"name": name, "alt": alt, "lon": lon, "lat": lat} for name, alt, lon, lat in LANDMARKS])


def downgrade() -> None:
    op.execute(DOWNGRADE)
