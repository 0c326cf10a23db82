"""Tiles: stored Web Mercator geometries, generalized views, invalidation triggers (NOTIFY).

- ``geom_3857``: a stored generated column (``ST_Transform(geom, 3857)``) with a GiST index
  on every layer table, so a tile query neither transforms nor reprojects its envelope.
- ``tiles_parcel_blocks``: parcels dissolved by land use inside the cells of the zoom-15
  grid (about 1.2 km), for zooms 11–13; kept current by the parcels' trigger.
- ``tiles_wards_gen``: each ward simplified for zoom buckets 6, 8, 10, 12, 14.
- Statement-level triggers (transition tables, so a COPY of a million rows costs one
  notification) on every layer table: ``pg_notify('huegis_tiles', {"layer", "boxes"})`` with
  the lon/lat boxes of the old and new rows (and of the generalized rows that changed),
  delivered when the transaction commits, and logged in ``tiles_changes`` (replayed by a
  worker that starts or reconnects, so no write is missed while nobody listened).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# A write statement touching more parcels than this leaves the land-use blocks to be rebuilt
# in the background (by a worker, or `huegis tiles refresh`) instead of in the transaction.
BULK_ROWS = 20_000

# Layer tables and the collection id their changes invalidate (the catalog's ids).
LAYER_TABLES = {
    "admin_units": "wards", "land_parcels": "parcels", "construction": "construction",
    "tourism_pois": "tourism", "health_facilities": "health",
    "education_facilities": "education", "incidents": "incidents",
}

UPGRADE = r"""
-- Function bodies name the geom_3857 columns added further down.
SET LOCAL check_function_bodies = off;

-- Column and row of the cell of the zoom-16 Web Mercator grid (metres) and the origin of that grid.
CREATE FUNCTION huegis_tiles_cell(x double precision) RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
  AS $$ SELECT floor((x + 20037508.342789244) / (40075016.685578488 / 65536))::integer $$;
CREATE FUNCTION huegis_tiles_row(y double precision) RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
  AS $$ SELECT floor((20037508.342789244 - y) / (40075016.685578488 / 65536))::integer $$;

CREATE TABLE tiles_parcel_blocks (
  cx integer NOT NULL,
  cy integer NOT NULL,
  land_use text NOT NULL,
  parcels integer NOT NULL,
  area_m2 double precision,
  geom_3857 geometry(Geometry, 3857) NOT NULL,
  PRIMARY KEY (cx, cy, land_use)
);
CREATE INDEX tiles_parcel_blocks_gist ON tiles_parcel_blocks USING gist (geom_3857);

-- Dissolve the parcels of the given land uses whose bounding-box centre lies in the given
-- cells (everything when cxs is NULL); returns the lon/lat extent of the blocks removed and
-- added.
CREATE FUNCTION huegis_tiles_refresh_blocks(cxs integer[], cys integer[], uses text[])
  RETURNS geometry LANGUAGE plpgsql AS $$
DECLARE
  old_ext box2d;
  new_ext box2d;
BEGIN
  IF cxs IS NULL THEN
    SELECT ST_Extent(geom_3857) INTO old_ext FROM tiles_parcel_blocks;
    TRUNCATE tiles_parcel_blocks;
    WITH p AS (
      SELECT huegis_tiles_cell((ST_XMin(geom_3857) + ST_XMax(geom_3857)) / 2) AS cx,
             huegis_tiles_row((ST_YMin(geom_3857) + ST_YMax(geom_3857)) / 2) AS cy,
             land_use, area_m2, geom_3857
      FROM land_parcels),
    ins AS (
      INSERT INTO tiles_parcel_blocks (cx, cy, land_use, parcels, area_m2, geom_3857)
      SELECT cx, cy, land_use, count(*), sum(area_m2),
             ST_SimplifyPreserveTopology(ST_UnaryUnion(ST_Collect(geom_3857)), 1.5)
      FROM p GROUP BY cx, cy, land_use
      RETURNING geom_3857)
    SELECT ST_Extent(geom_3857) INTO new_ext FROM ins;
  ELSE
    WITH d AS (
      DELETE FROM tiles_parcel_blocks b USING unnest(cxs, cys, uses) AS c(cx, cy, lu)
      WHERE b.cx = c.cx AND b.cy = c.cy AND b.land_use = c.lu RETURNING b.geom_3857)
    SELECT ST_Extent(geom_3857) INTO old_ext FROM d;
    WITH c AS (
      SELECT DISTINCT cx, cy, lu FROM unnest(cxs, cys, uses) AS c(cx, cy, lu)),
    p AS (
      SELECT c.cx, c.cy, t.land_use, t.area_m2, t.geom_3857
      FROM c JOIN land_parcels t ON t.geom_3857 && ST_MakeEnvelope(
          -20037508.342789244 + c.cx * (40075016.685578488 / 65536),
          20037508.342789244 - (c.cy + 1) * (40075016.685578488 / 65536),
          -20037508.342789244 + (c.cx + 1) * (40075016.685578488 / 65536),
          20037508.342789244 - c.cy * (40075016.685578488 / 65536), 3857)
      WHERE t.land_use = c.lu
        AND huegis_tiles_cell((ST_XMin(t.geom_3857) + ST_XMax(t.geom_3857)) / 2) = c.cx
        AND huegis_tiles_row((ST_YMin(t.geom_3857) + ST_YMax(t.geom_3857)) / 2) = c.cy),
    ins AS (
      INSERT INTO tiles_parcel_blocks (cx, cy, land_use, parcels, area_m2, geom_3857)
      SELECT cx, cy, land_use, count(*), sum(area_m2),
             ST_SimplifyPreserveTopology(ST_UnaryUnion(ST_Collect(geom_3857)), 1.5)
      FROM p GROUP BY cx, cy, land_use
      RETURNING geom_3857)
    SELECT ST_Extent(geom_3857) INTO new_ext FROM ins;
  END IF;
  IF old_ext IS NULL AND new_ext IS NULL THEN
    RETURN NULL;
  END IF;
  RETURN ST_Transform(ST_SetSRID(ST_Collect(old_ext::geometry, new_ext::geometry), 3857),
                      4326);
END $$;

-- Every invalidation message, so that a cache made while nobody listened (a stopped server,
-- ``huegis tiles seed``) catches up when a worker starts: it replays what came after its
-- watermark. ``epoch`` names this database's log (a cache of another database is cleared).
CREATE TABLE tiles_changes (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  layer text NOT NULL,
  boxes jsonb NOT NULL
);
CREATE TABLE tiles_state (
  epoch text NOT NULL,
  -- A statement over BULK_ROWS parcels leaves the blocks to a worker (or `tiles refresh`).
  blocks_dirty boolean NOT NULL DEFAULT false
);
INSERT INTO tiles_state (epoch) VALUES (md5(random()::text || clock_timestamp()::text));

CREATE TABLE tiles_wards_gen (
  id integer NOT NULL,
  z integer NOT NULL,
  geom_3857 geometry(Geometry, 3857) NOT NULL,
  PRIMARY KEY (id, z)
);
CREATE INDEX tiles_wards_gen_gist ON tiles_wards_gen USING gist (geom_3857);

-- Re-simplify the given admin units (all when ids is NULL): tolerance one tile unit
-- (1/4096 of a tile) at the bucket's zoom.
CREATE FUNCTION huegis_tiles_refresh_wards(ids integer[]) RETURNS void
  LANGUAGE sql AS $$
  DELETE FROM tiles_wards_gen WHERE ids IS NULL OR id = ANY (ids);
  INSERT INTO tiles_wards_gen (id, z, geom_3857)
  SELECT a.id, z.z, ST_SimplifyPreserveTopology(a.geom_3857,
                                                40075016.685578488 / 2 ^ z.z / 4096)
  FROM admin_units a, unnest(ARRAY[6, 8, 10, 12, 14]) AS z(z)
  WHERE a.level = 'ward' AND (ids IS NULL OR a.id = ANY (ids));
$$;

-- Statement-level: TG_ARGV[0] is the collection id. Boxes are lon/lat; more than 40 are
-- merged into their extent (a payload stays far below NOTIFY's 8000 bytes).
CREATE FUNCTION huegis_tiles_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  layer text := TG_ARGV[0];
  boxes box2d[];
  extra geometry;
  ids integer[];
  cxs integer[];
  cys integer[];
  uses text[];
  payload jsonb;
  change_id bigint;
  rebuild boolean := false;
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT array_agg(geom::box2d) INTO boxes FROM new_rows;
  ELSIF TG_OP = 'DELETE' THEN
    SELECT array_agg(geom::box2d) INTO boxes FROM old_rows;
  ELSE
    SELECT array_agg(b) INTO boxes FROM (
      SELECT geom::box2d AS b FROM old_rows UNION ALL SELECT geom::box2d FROM new_rows) s;
  END IF;
  IF boxes IS NULL THEN
    RETURN NULL;
  END IF;

  IF layer = 'parcels' THEN
    IF TG_OP = 'INSERT' THEN
      SELECT array_agg(cx), array_agg(cy), array_agg(lu) INTO cxs, cys, uses FROM (
        SELECT DISTINCT huegis_tiles_cell((ST_XMin(geom_3857) + ST_XMax(geom_3857)) / 2) cx,
               huegis_tiles_row((ST_YMin(geom_3857) + ST_YMax(geom_3857)) / 2) cy,
               land_use lu
        FROM new_rows) s;
    ELSIF TG_OP = 'DELETE' THEN
      SELECT array_agg(cx), array_agg(cy), array_agg(lu) INTO cxs, cys, uses FROM (
        SELECT DISTINCT huegis_tiles_cell((ST_XMin(geom_3857) + ST_XMax(geom_3857)) / 2) cx,
               huegis_tiles_row((ST_YMin(geom_3857) + ST_YMax(geom_3857)) / 2) cy,
               land_use lu
        FROM old_rows) s;
    ELSE
      SELECT array_agg(cx), array_agg(cy), array_agg(lu) INTO cxs, cys, uses FROM (
        SELECT DISTINCT huegis_tiles_cell((ST_XMin(g) + ST_XMax(g)) / 2) cx,
               huegis_tiles_row((ST_YMin(g) + ST_YMax(g)) / 2) cy, lu
        FROM (SELECT geom_3857 g, land_use lu FROM old_rows
              UNION ALL SELECT geom_3857, land_use FROM new_rows) u) s;
    END IF;
    IF array_length(boxes, 1) > @BULK_ROWS@ THEN
      -- A bulk load: dissolving everything here would slow it down; a worker rebuilds the
      -- blocks in the background (huegis_tiles_rebuild) when it sees "rebuild".
      UPDATE tiles_state SET blocks_dirty = true;
      rebuild := true;
    ELSIF array_length(cxs, 1) > 400 THEN
      extra := huegis_tiles_refresh_blocks(NULL, NULL, NULL);
    ELSE
      extra := huegis_tiles_refresh_blocks(cxs, cys, uses);
    END IF;
    IF extra IS NOT NULL THEN
      boxes := boxes || extra::box2d;
    END IF;
  ELSIF layer = 'wards' THEN
    IF TG_OP = 'INSERT' THEN
      SELECT array_agg(id) INTO ids FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
      SELECT array_agg(id) INTO ids FROM old_rows;
    ELSE
      SELECT array_agg(id) INTO ids FROM (
        SELECT id FROM old_rows UNION SELECT id FROM new_rows) s;
    END IF;
    PERFORM huegis_tiles_refresh_wards(ids);
  END IF;

  IF array_length(boxes, 1) > 40 THEN
    SELECT ARRAY[ST_Extent(b::geometry)] INTO boxes FROM unnest(boxes) AS b;
  END IF;
  SELECT jsonb_build_object('layer', layer, 'boxes', jsonb_agg(jsonb_build_array(
           round(ST_XMin(b)::numeric, 7), round(ST_YMin(b)::numeric, 7),
           round(ST_XMax(b)::numeric, 7), round(ST_YMax(b)::numeric, 7))))
    INTO payload FROM unnest(boxes) AS b;
  INSERT INTO tiles_changes (layer, boxes) VALUES (layer, payload -> 'boxes')
    RETURNING id INTO change_id;
  PERFORM pg_notify('huegis_tiles', (payload || jsonb_build_object(
    'id', change_id, 'rebuild', rebuild))::text);
  RETURN NULL;
END $$;

-- Log and announce one invalidation box of a layer (as the triggers do).
CREATE FUNCTION huegis_tiles_announce(layer text, b box2d) RETURNS void
  LANGUAGE plpgsql AS $$
DECLARE
  boxes jsonb;
  change_id bigint;
BEGIN
  IF b IS NULL THEN
    RETURN;
  END IF;
  boxes := jsonb_build_array(jsonb_build_array(ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b)));
  INSERT INTO tiles_changes (layer, boxes) VALUES (layer, boxes) RETURNING id INTO change_id;
  PERFORM pg_notify('huegis_tiles', jsonb_build_object('layer', layer, 'boxes', boxes,
                                                       'id', change_id)::text);
END $$;

-- Rebuild every generalized table and announce what they cover (`huegis tiles refresh`, and
-- workers after a bulk load).
CREATE FUNCTION huegis_tiles_rebuild() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  ext geometry;
BEGIN
  ext := huegis_tiles_refresh_blocks(NULL, NULL, NULL);
  PERFORM huegis_tiles_refresh_wards(NULL);
  UPDATE tiles_state SET blocks_dirty = false;
  PERFORM huegis_tiles_announce('parcels', ext::box2d);
  PERFORM huegis_tiles_announce('wards', (SELECT ST_Extent(geom) FROM admin_units));
END $$;
""".replace("@BULK_ROWS@", str(BULK_ROWS))

for _table, _layer in LAYER_TABLES.items():
    UPGRADE += f"""
ALTER TABLE {_table} ADD COLUMN geom_3857 geometry
  GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED;
CREATE INDEX {_table}_geom_3857_gist ON {_table} USING gist (geom_3857);
CREATE TRIGGER {_table}_tiles_ins AFTER INSERT ON {_table}
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION huegis_tiles_notify('{_layer}');
CREATE TRIGGER {_table}_tiles_upd AFTER UPDATE ON {_table}
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION huegis_tiles_notify('{_layer}');
CREATE TRIGGER {_table}_tiles_del AFTER DELETE ON {_table}
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION huegis_tiles_notify('{_layer}');
"""

UPGRADE += """
SELECT huegis_tiles_refresh_blocks(NULL, NULL, NULL);
SELECT huegis_tiles_refresh_wards(NULL);
"""

DOWNGRADE = "".join(
    f"""
DROP TRIGGER IF EXISTS {t}_tiles_ins ON {t};
DROP TRIGGER IF EXISTS {t}_tiles_upd ON {t};
DROP TRIGGER IF EXISTS {t}_tiles_del ON {t};
ALTER TABLE {t} DROP COLUMN IF EXISTS geom_3857;
""" for t in LAYER_TABLES) + """
DROP FUNCTION IF EXISTS huegis_tiles_notify();
DROP FUNCTION IF EXISTS huegis_tiles_rebuild();
DROP FUNCTION IF EXISTS huegis_tiles_announce(text, box2d);
DROP FUNCTION IF EXISTS huegis_tiles_refresh_wards(integer[]);
DROP FUNCTION IF EXISTS huegis_tiles_refresh_blocks(integer[], integer[], text[]);
DROP TABLE IF EXISTS tiles_wards_gen, tiles_parcel_blocks, tiles_changes, tiles_state;
DROP FUNCTION IF EXISTS huegis_tiles_row(double precision);
DROP FUNCTION IF EXISTS huegis_tiles_cell(double precision);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
