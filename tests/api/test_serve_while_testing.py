"""`make test` while `make run` serves: the suite uses its own databases and leaves the served
one untouched (issue 5). A real ``huegis serve`` on its own database runs while a child pytest
session drives the CLI and migration tests against the same PostgreSQL server."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg

from gis import db
from gis.realdata import load_real
from gis.settings import PROJECT_ROOT, Settings

TABLES = ("admin_units", "land_parcels", "construction", "tourism_pois", "incidents",
          "incident_events")


def _snapshot(url: str) -> dict:
    with psycopg.connect(url) as conn:
        out = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in TABLES}
        out["revision"] = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    return out


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status


def test_suite_leaves_the_served_database_untouched(server_url: str, tmp_path: Path) -> None:
    with db.scratch_database(server_url, "huegis_served") as url:
        db.migrate(url)
        with psycopg.connect(url) as conn:
            load_real(conn, Settings().data_dir)
        before = _snapshot(url)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "HUEGIS_DATABASE_URL": url, "HUEGIS_VAR_DIR": str(tmp_path)}
        server = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port",
                                   str(port)], env=env, cwd=PROJECT_ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    assert _get(f"{base}/health") == 200
                    break
                except OSError:
                    time.sleep(0.1)
            # The user's shell, exported for `make run`, is what `make test` inherits.
            child = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                 "tests/api/test_cli.py", "tests/test_migrations.py"],
                env={**os.environ, "HUEGIS_DATABASE_URL": url}, cwd=PROJECT_ROOT,
                capture_output=True, text=True, timeout=600)
            assert child.returncode == 0, child.stdout[-3000:]
            assert " passed" in child.stdout
            assert _get(f"{base}/health") == 200
            assert _get(f"{base}/collections/wards/items?limit=1") == 200
        finally:
            server.terminate()
            server.wait(timeout=15)
        assert _snapshot(url) == before
