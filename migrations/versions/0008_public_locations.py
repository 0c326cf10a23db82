"""Public locations of sensitive incident reports (rounded to about 100 m), stored for every
public reader.

Reports of the sensitive categories (``layers.incidents.SENSITIVE_CATEGORIES``: public order)
are shown to the public at a point snapped to a 100 m grid in VN-2000 / TM-3 107-00
(EPSG:9214), with no address. Until now only the ``incidents_public`` view computed that, and
only Open311 read it; features, tiles, PNG maps, WMS and exports read the exact points.

- ``incidents.geom_public``: the public location, a stored generated column with a GiST index,
  so public bbox and distance filters run on it through the index (a filter on the exact
  point would let a 1 m bbox probe where a report was filed).
- ``incidents.geom_3857`` (vector tiles and PNG maps, which are public) is now the public
  location in Web Mercator.
- ``incidents_public`` (``Layer.public_view``) exposes ``geom_public AS geom`` and ``geom_3857``,
  the address blanked for sensitive reports, and no reporter fields.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from alembic import op

from layers.incidents import SENSITIVE_CATEGORIES

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_SENSITIVE = "category IN (" + ", ".join(f"'{c}'" for c in SENSITIVE_CATEGORIES) + ")"
_PUBLIC_GEOM = (f"CASE WHEN {_SENSITIVE} "
                "THEN ST_Transform(ST_SnapToGrid(ST_Transform(geom, 9214), 100), 4326) "
                "ELSE geom END")

_COLUMNS = """id, ref, category, description, status, priority, channel,
         CASE WHEN {sensitive} THEN NULL ELSE address END AS address,
         ward_code, created_at, updated_at, resolved_at, sla_due_at, rating, source"""

UPGRADE = f"""
DROP VIEW incidents_public;
ALTER TABLE incidents DROP COLUMN geom_3857;
ALTER TABLE incidents
  ADD COLUMN geom_public geometry(Point, 4326) GENERATED ALWAYS AS ({_PUBLIC_GEOM}) STORED,
  ADD COLUMN geom_3857 geometry GENERATED ALWAYS AS (ST_Transform({_PUBLIC_GEOM}, 3857)) STORED;
CREATE INDEX incidents_geom_public_gist ON incidents USING gist (geom_public);
CREATE INDEX incidents_geom_3857_gist ON incidents USING gist (geom_3857);
CREATE VIEW incidents_public AS
  SELECT {_COLUMNS.format(sensitive=_SENSITIVE)},
         geom_public AS geom, geom_3857
  FROM incidents;
COMMENT ON VIEW incidents_public IS
  'Incident reports as the public may see them: sensitive locations rounded to 100 m, '
  'their addresses blanked, no reporter details.';
ANALYZE incidents;
"""

DOWNGRADE = f"""
DROP VIEW incidents_public;
ALTER TABLE incidents DROP COLUMN geom_3857, DROP COLUMN geom_public;
ALTER TABLE incidents ADD COLUMN geom_3857 geometry
  GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED;
CREATE INDEX incidents_geom_3857_gist ON incidents USING gist (geom_3857);
CREATE VIEW incidents_public AS
  SELECT {_COLUMNS.format(sensitive="category = 'public_order'")},
         CASE WHEN category = 'public_order'
              THEN ST_Transform(ST_SnapToGrid(ST_Transform(geom, 9214), 100), 4326)
              ELSE geom END::geometry(Point, 4326) AS geom
  FROM incidents;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
