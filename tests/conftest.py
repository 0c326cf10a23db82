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


# ------------------------------------------------------------- shared, made once per session
#
# The demo database (generated parcels, construction, incidents, rasters over the real wards),
# a live ``huegis serve`` process on it, and a Redis server: each started here, by the tests,
# never borrowed from the machine.

TEST_DEMO_SIZE = dict(parcels=10_000, construction=1_000, incidents=5_000, seed=46)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def demo_settings(server_url: str, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[Settings]:
    """Settings of a separate database holding the demo (made once; treat it as read-only,
    or undo what a test changes)."""
    from gis.demo import DemoSize, load_demo

    with db.scratch_database(server_url, "huegis_demo") as url:
        db.migrate(url)
        settings = Settings(database_url=url, var_dir=tmp_path_factory.mktemp("demo_var"))
        with psycopg.connect(url) as conn:
            load_demo(conn, settings, DemoSize(**TEST_DEMO_SIZE))
        yield settings


def _wait_http(url: str, proc, timeout: float = 60.0) -> None:
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


@pytest.fixture(scope="session")
def live_server(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[str]:
    """Base URL of a real ``huegis serve`` (uvicorn, 2 workers) on the demo database, for
    real clients: GDAL, OWSLib, Chromium."""
    import subprocess
    import sys

    port = _free_port()
    env = {**os.environ, "HUEGIS_DATABASE_URL": demo_settings.dsn,
           "HUEGIS_VAR_DIR": str(demo_settings.var_dir)}
    log = tmp_path_factory.mktemp("live") / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port),
                                 "--workers", "2"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{base}/health", proc)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private ``redis-server`` (Debian's package) on a free port, stopped at the end."""
    import shutil
    import subprocess

    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is missing: make test installs it (scripts/system-deps.sh)")
    port = _free_port()
    d = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(d)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import time

    import redis

    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium, driven by PyPI playwright with ``executable_path`` (no download)."""
    import shutil

    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        pytest.fail("chromium is missing: make test installs it (scripts/system-deps.sh)")
    return path


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
