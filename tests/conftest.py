"""Test set-up: a real PostGIS, a fresh database per test session, migrated by Alembic.

``HUEGIS_TEST_DATABASE_URL`` points the tests at any PostGIS server (a fresh database is
created on it); otherwise the project-managed cluster is started (``huegis db up``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest

from gis import db
from gis.settings import Settings


def _server_url(settings: Settings) -> str:
    url = os.environ.get("HUEGIS_TEST_DATABASE_URL")
    if url:
        return url
    from gis.cluster import Cluster

    Cluster(settings).up()
    return settings.managed_url("postgres")


@pytest.fixture(scope="session")
def server_url() -> str:
    return _server_url(Settings())


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh database for this test session, at Alembic head, with the real Huế data."""
    with db.scratch_database(server_url, "huegis_test") as url:
        db.migrate(url)
        from gis.realdata import load_real

        with psycopg.connect(url) as conn:
            load_real(conn, Settings().data_dir)
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings pointing at the test database, with a private var/ directory for files."""
    return Settings(database_url=database_url, var_dir=tmp_path_factory.mktemp("var"))


@pytest.fixture()
def empty_database(server_url: str) -> Iterator[str]:
    """A new, unmigrated database (for migration tests)."""
    with db.scratch_database(server_url, "huegis_mig") as url:
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
