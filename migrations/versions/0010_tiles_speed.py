"""Vector tile speed: tile queries stay in one process.

``huegis_tiles_serial()`` is a constant ``true`` declared ``PARALLEL UNSAFE``. Every tile
query of ``gis.tiles.mvt`` calls it, so the planner never starts parallel workers for a
tile: tiles come many at a time (a map view asks for a dozen, a server takes a few
connections at once), the cores are already busy with other tiles, and a worker's start-up,
its shared-memory queue and the final merge were pure overhead — measured on the 2-core
benchmark machine, the cold z14–17 run was faster without them. The call is inlined to
``true`` after the planner has noted the hazard, so it costs nothing per row. Other queries
(features, planners' queries) keep their parallel plans.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE FUNCTION huegis_tiles_serial() RETURNS boolean
  LANGUAGE sql STABLE PARALLEL UNSAFE AS $$ SELECT true $$;
COMMENT ON FUNCTION huegis_tiles_serial() IS
  'Always true; PARALLEL UNSAFE, so a tile query calling it plans no parallel workers.';
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS huegis_tiles_serial()")
