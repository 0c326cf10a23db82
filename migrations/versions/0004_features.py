"""Indexes for OGC API Features queries (sorting, temporal filters).

``incidents.created_at`` is indexed by 0001; construction's temporal field (``issued_on``) gets
its index here, so ``datetime`` and ``T_*`` filters and the temporal extent use an index.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS construction_issued_on ON construction (issued_on)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS construction_issued_on")
