"""Test set-up: a real PostGIS, a fresh database per test session, migrated by Alembic.

``HUEGIS_TEST_DATABASE_URL`` points the tests at any PostGIS server (a fresh database is
created on it); otherwise the project-managed cluster is started (``huegis db up``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

from gis import db
from gis.settings import Settings


def _server_url(settings: Settings) -> str:
    url = os.environ.get("HUEGIS_TEST_DATABASE_URL")
    if url:
        return url
    from gis.cluster import Cluster

    Cluster(settings).up()
    return settings.managed_url("postgres")


def create_database(server_url: str, prefix: str = "huegis_test") -> str:
    """Create an empty database on the server; return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return db.with_database(server_url, name)


def drop_database(server_url: str, url: str) -> None:
    name = db.database_name(url)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


@contextmanager
def fresh_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new empty database for the duration of the block."""
    url = create_database(server_url, prefix)
    try:
        yield url
    finally:
        drop_database(server_url, url)


@pytest.fixture(scope="session")
def server_url() -> str:
    return _server_url(Settings())


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh database for this test session, at Alembic head, with the real Huế data."""
    url = create_database(server_url)
    try:
        db.migrate(url)
        from gis.realdata import load_real

        with psycopg.connect(url) as conn:
            load_real(conn, Settings().data_dir)
        yield url
    finally:
        drop_database(server_url, url)


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings pointing at the test database, with a private var/ directory for files."""
    return Settings(database_url=database_url, var_dir=tmp_path_factory.mktemp("var"))


@pytest.fixture()
def empty_database(server_url: str) -> Iterator[str]:
    """A new, unmigrated database (for migration tests)."""
    with fresh_database(server_url, "huegis_mig") as url:
        yield url


@pytest.fixture()
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    """A connection whose work is rolled back after the test."""
    with psycopg.connect(database_url) as c:
        yield c
        c.rollback()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: every test here talks to real services."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("CI") and skipped and exitstatus == 0:
        reporter.write_line(f"{len(skipped)} test(s) skipped in CI: failing the run", red=True)
        session.exitstatus = 1
