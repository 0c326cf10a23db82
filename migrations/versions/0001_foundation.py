"""Foundation schema: extensions, administrative units, thematic layers, incidents, rasters.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Thematic tables that share the bookkeeping columns and the updated_at trigger.
TABLES = ("admin_units", "land_parcels", "construction", "tourism_pois", "health_facilities",
          "education_facilities", "incidents", "raster_datasets")


def _geom(table: str, gtype: str) -> str:
    """Geometry column in EPSG:4326 with SRID/type from the typmod and a validity check."""
    return (f"geom geometry({gtype}, 4326) NOT NULL "
            f"CONSTRAINT {table}_geom_valid CHECK (ST_IsValid(geom))")


def _bookkeeping(source: str = "import") -> str:
    """Where a row came from and when it was created and last updated (by trigger)."""
    return (f"source text NOT NULL DEFAULT '{source}', "
            "created_at timestamptz NOT NULL DEFAULT now(), "
            "updated_at timestamptz NOT NULL DEFAULT now()")


UPGRADE = f"""
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS postgis_raster;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;

CREATE FUNCTION huegis_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;

-- An immutable unaccent for indexes (diacritic-insensitive search of Vietnamese names).
CREATE FUNCTION huegis_unaccent(text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
  AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, $1) $$;

CREATE TABLE admin_units (
  id serial PRIMARY KEY,
  gso_code text NOT NULL UNIQUE CHECK (gso_code ~ '^[0-9]{{2,5}}$'),
  level text NOT NULL CHECK (level IN ('city', 'ward')),
  name text NOT NULL,
  short_name text,
  unit_type text NOT NULL,
  parent_code text REFERENCES admin_units (gso_code),
  area_km2 double precision,
  population integer,
  effective_from date,
  predecessors jsonb NOT NULL DEFAULT '[]',
  {_bookkeeping()},
  {_geom("admin_units", "MultiPolygon")}
);
CREATE INDEX admin_units_name_trgm ON admin_units USING gin (huegis_unaccent(name) gin_trgm_ops);

CREATE VIEW wards AS
  SELECT id, gso_code, name, short_name, unit_type, area_km2, population, effective_from,
         source, updated_at, geom
  FROM admin_units WHERE level = 'ward';

CREATE TABLE land_parcels (
  id bigserial PRIMARY KEY,
  parcel_no text NOT NULL,
  map_sheet_no text NOT NULL,
  land_use text NOT NULL,
  area_m2 double precision,
  zoning text,
  owner_type text,
  owner_name text,
  ward_code text,
  address text,
  {_bookkeeping()},
  {_geom("land_parcels", "MultiPolygon")},
  CONSTRAINT land_parcels_key UNIQUE (ward_code, map_sheet_no, parcel_no)
);
CREATE INDEX land_parcels_land_use ON land_parcels (land_use);

CREATE TABLE construction (
  id bigserial PRIMARY KEY,
  record_no text NOT NULL UNIQUE,
  kind text NOT NULL CHECK (kind IN ('permit', 'violation')),
  work_type text,
  status text NOT NULL,
  applicant_type text,
  issued_on date,
  expires_on date,
  floors smallint CHECK (floors IS NULL OR floors BETWEEN 0 AND 200),
  footprint_m2 double precision,
  address text,
  ward_code text,
  inspector_notes text,
  {_bookkeeping()},
  {_geom("construction", "MultiPolygon")}
);
CREATE INDEX construction_kind_status ON construction (kind, status);

CREATE TABLE tourism_pois (
  id bigserial PRIMARY KEY,
  osm_id bigint UNIQUE,
  name text NOT NULL,
  name_en text,
  category text NOT NULL,
  address text,
  opening_hours text,
  ward_code text,
  {_bookkeeping()},
  {_geom("tourism_pois", "Point")}
);
CREATE INDEX tourism_pois_name_trgm ON tourism_pois
  USING gin (huegis_unaccent(name) gin_trgm_ops);

CREATE TABLE health_facilities (
  id bigserial PRIMARY KEY,
  osm_id bigint UNIQUE,
  name text NOT NULL,
  kind text NOT NULL,
  beds integer CHECK (beds IS NULL OR beds >= 0),
  address text,
  opening_hours text,
  ward_code text,
  {_bookkeeping()},
  {_geom("health_facilities", "Point")}
);

CREATE TABLE education_facilities (
  id bigserial PRIMARY KEY,
  osm_id bigint UNIQUE,
  name text NOT NULL,
  kind text NOT NULL,
  address text,
  ward_code text,
  {_bookkeeping()},
  {_geom("education_facilities", "Point")}
);

CREATE TABLE incidents (
  id bigserial PRIMARY KEY,
  ref text NOT NULL UNIQUE,
  category text NOT NULL,
  description text CHECK (description IS NULL OR length(description) <= 4000),
  status text NOT NULL DEFAULT 'received' CHECK (status IN
    ('received', 'assigned', 'in_progress', 'resolved', 'rejected', 'duplicate', 'reopened')),
  priority text NOT NULL DEFAULT 'normal' CHECK (priority IN ('normal', 'urgent')),
  channel text NOT NULL DEFAULT 'app' CHECK (channel IN ('app', 'hotline', 'web', 'open311')),
  address text,
  ward_code text REFERENCES admin_units (gso_code),
  reporter_name text,
  reporter_phone text,
  reporter_email text,
  sla_due_at timestamptz,
  resolved_at timestamptz,
  rating smallint CHECK (rating IS NULL OR rating BETWEEN 1 AND 5),
  {_bookkeeping("app")},
  {_geom("incidents", "Point")}
);
CREATE INDEX incidents_ward_status ON incidents (ward_code, status);
CREATE INDEX incidents_created_at ON incidents (created_at);
CREATE INDEX incidents_category ON incidents (category);

-- Append-only history of every incident: who did what, when, before and after.
CREATE TABLE incident_events (
  id bigserial PRIMARY KEY,
  incident_id bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
  at timestamptz NOT NULL DEFAULT now(),
  actor text NOT NULL,
  kind text NOT NULL,
  from_status text,
  to_status text,
  note text,
  data jsonb NOT NULL DEFAULT '{{}}'
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, at);

CREATE FUNCTION huegis_incident_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'incident_events is append-only';
END $$;
CREATE TRIGGER incident_events_append_only BEFORE UPDATE ON incident_events
  FOR EACH ROW EXECUTE FUNCTION huegis_incident_events_append_only();

CREATE TABLE raster_datasets (
  id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]*$'),
  title text NOT NULL,
  title_vi text,
  path text NOT NULL,
  units text NOT NULL,
  nodata double precision,
  width integer,
  height integer,
  {_bookkeeping()},
  bounds geometry(Polygon, 4326)
);
"""

# GiST indexes and updated_at triggers on every spatial table.
for _t in TABLES:
    if _t != "raster_datasets":
        UPGRADE += f"CREATE INDEX {_t}_geom_gist ON {_t} USING gist (geom);\n"
    UPGRADE += (f"CREATE TRIGGER {_t}_touch BEFORE UPDATE ON {_t} "
                "FOR EACH ROW EXECUTE FUNCTION huegis_touch_updated_at();\n")

DOWNGRADE = """
DROP VIEW IF EXISTS wards;
DROP TABLE IF EXISTS incident_events, incidents, raster_datasets, education_facilities,
  health_facilities, tourism_pois, construction, land_parcels, admin_units CASCADE;
DROP FUNCTION IF EXISTS huegis_incident_events_append_only();
DROP FUNCTION IF EXISTS huegis_touch_updated_at();
DROP FUNCTION IF EXISTS huegis_unaccent(text);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    # Extensions are left installed: other schemas may use them.
    op.execute(DOWNGRADE)
