"""Users, API keys, roles and the append-only audit of feature edits (auth, OGC Part 4).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ROLES = "('public', 'citizen', 'inspector', 'planner', 'admin')"

UPGRADE = f"""
CREATE TABLE users (
  id serial PRIMARY KEY,
  username text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9._@-]{{1,64}}$'),
  password_hash text NOT NULL,
  role text NOT NULL CHECK (role IN {ROLES}),
  wards text[] NOT NULL DEFAULT '{{}}',
  disabled boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER users_touch BEFORE UPDATE ON users
  FOR EACH ROW EXECUTE FUNCTION huegis_touch_updated_at();

-- Only a SHA-256 of each key is stored; ``prefix`` (public) names the key in listings.
CREATE TABLE api_keys (
  id serial PRIMARY KEY,
  prefix text NOT NULL UNIQUE,
  key_hash bytea NOT NULL UNIQUE,
  name text NOT NULL DEFAULT '',
  role text NOT NULL CHECK (role IN {ROLES}),
  wards text[] NOT NULL DEFAULT '{{}}',
  user_id integer REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);

-- Append-only audit of every feature edit (OGC API Features Part 4), written in the edit's
-- own transaction.
CREATE TABLE feature_audit (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  actor text NOT NULL,
  actor_role text NOT NULL,
  user_id integer,
  via text NOT NULL,
  operation text NOT NULL CHECK (operation IN ('create', 'replace', 'update', 'delete')),
  layer text NOT NULL,
  feature_id text NOT NULL,
  before jsonb,
  after jsonb
);
CREATE INDEX feature_audit_feature ON feature_audit (layer, feature_id, at);

CREATE FUNCTION huegis_feature_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'feature_audit is append-only (% refused)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER feature_audit_append_only BEFORE UPDATE OR DELETE ON feature_audit
  FOR EACH ROW EXECUTE FUNCTION huegis_feature_audit_append_only();
CREATE TRIGGER feature_audit_no_truncate BEFORE TRUNCATE ON feature_audit
  FOR EACH STATEMENT EXECUTE FUNCTION huegis_feature_audit_append_only();
"""

DOWNGRADE = """
DROP TABLE IF EXISTS feature_audit, api_keys, users CASCADE;
DROP FUNCTION IF EXISTS huegis_feature_audit_append_only();
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
