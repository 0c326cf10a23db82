"""The project-managed cluster: own data directory, port and socket; idempotent up/down."""

import socket
from pathlib import Path

import psycopg

from gis.cluster import Cluster
from gis.settings import Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_up_status_noop_down(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var", pg_port=_free_port(), database_url=None)
    cluster = Cluster(settings)
    assert cluster.status()["running"] is False
    try:
        assert cluster.up() is True
        status = cluster.status()
        assert status["running"] and status["initialized"]
        assert (settings.var_dir / "pg" / "PG_VERSION").exists()
        assert cluster.up() is False  # already up: a no-op
        with psycopg.connect(settings.dsn) as conn:
            assert conn.execute("SELECT current_database()").fetchone()[0] == "huegis"
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            show = conn.execute("SHOW postgis.gdal_enabled_drivers").fetchone()[0]
            assert "GTiff" in show
    finally:
        assert cluster.down() is True
    assert cluster.status()["running"] is False
    assert cluster.down() is False
