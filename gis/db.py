"""Database access: connections, the asyncpg pool for the API, and Alembic migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

from gis.settings import PROJECT_ROOT, Settings

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def sqlalchemy_url(dsn: str) -> str:
    """``postgresql://…`` → ``postgresql+psycopg://…`` for SQLAlchemy/Alembic."""
    scheme, rest = dsn.split("://", 1)
    return f"postgresql+psycopg://{rest}" if scheme in ("postgresql", "postgres") else dsn


def with_database(dsn: str, database: str) -> str:
    """The same server URL pointing at another database.

    >>> with_database("postgresql://u@h:5/a?sslmode=disable", "b")
    'postgresql://u@h:5/b?sslmode=disable'
    """
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def database_name(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


def redact(dsn: str) -> str:
    """URL without its password, for messages."""
    parts = urlsplit(dsn)
    netloc = parts.netloc
    if "@" in netloc and ":" in netloc.split("@", 1)[0]:
        user = netloc.split("@", 1)[0].split(":", 1)[0]
        netloc = f"{user}:***@{netloc.split('@', 1)[1]}"
    query = urlencode([(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def create_database(server_url: str, prefix: str) -> str:
    """Create an empty database with a unique name on the server; return its URL."""
    import uuid

    from psycopg import sql

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(server_url, name)


def drop_database(server_url: str, url: str) -> None:
    """Drop the database of ``url`` (connections to it are closed)."""
    from psycopg import sql

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(database_name(url))))


@contextmanager
def scratch_database(server_url: str, prefix: str, *, keep: bool = False) -> Iterator[str]:
    """A new empty database for the duration of the block, dropped afterwards unless ``keep``.

    Tests and benchmarks use it; the caller migrates and loads what it needs.
    """
    url = create_database(server_url, prefix)
    try:
        yield url
    finally:
        if not keep:
            drop_database(server_url, url)


def alembic_config(dsn: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(dsn).replace("%", "%%"))
    return cfg


def migrate(dsn: str, revision: str = "head") -> None:
    """Upgrade the database at ``dsn`` to ``revision`` with Alembic."""
    from alembic import command

    command.upgrade(alembic_config(dsn), revision)


def downgrade(dsn: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(dsn), revision)


def head_revision() -> str:
    """The newest revision in ``migrations/`` (what ``migrate`` upgrades to)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("postgresql://")).get_current_head()


def current_revision(dsn: str) -> str | None:
    with psycopg.connect(dsn) as conn:
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        return row[0] if row else None


def ensure_ready(settings: Settings) -> str:
    """Start the managed cluster when it is the target; return the DSN."""
    if settings.uses_managed_cluster:
        from gis.cluster import Cluster

        Cluster(settings).up()
    return settings.dsn


async def _keep_session(_conn) -> None:
    """Release without asyncpg's reset query (``RESET ALL``, ``UNLISTEN *``…: a second round
    trip per request). asyncpg still rolls back an open transaction first; the API sets no
    session state on pooled connections (LISTEN and advisory locks use their own)."""


async def create_pool(settings: Settings):
    """asyncpg pool with a statement timeout, so a heavy query cannot starve the others."""
    import asyncpg

    return await asyncpg.create_pool(
        settings.dsn,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        reset=_keep_session,
        server_settings={"statement_timeout": str(settings.statement_timeout_ms),
                         "application_name": "huegis-api"},
    )
