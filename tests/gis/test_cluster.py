"""The project-managed cluster: real servers in temporary directories (never ./var).

One data directory is made with initdb per module and copied (``cp -a``) for each test that
needs an initialised cluster; the tests that are about initdb run it themselves.

The directories are not pytest's ``tmp_path``: every pytest session resets its base
(``/tmp/pytest-of-<user>``) to mode 0700, which would lock the ``postgres`` user (the server's,
when we are root) out of a running cluster whenever another session starts.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from gis.cluster import (
    Cluster,
    PidFile,
    _alive,
    _cwd_holders,
    _listening,
    _socket_pids,
    port_holder,
    tcp_port_problem,
)
from gis.errors import ClusterError
from gis.settings import Settings

ROOT = os.geteuid() == 0
SERVER_USER = "postgres" if ROOT else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data_directory(cluster: Cluster) -> str:
    with psycopg.connect(cluster.settings.managed_url("postgres")) as conn:
        return conn.execute("SHOW data_directory").fetchone()[0]


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    """This module's scratch directory, outside pytest's base, removed at the end."""
    d = Path(tempfile.mkdtemp(prefix="huegis-test-cluster-"))
    d.chmod(0o711)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture()
def tmp_path(base: Path, request: pytest.FixtureRequest) -> Path:
    """A fresh directory per test (overrides pytest's, see the module docstring)."""
    return Path(tempfile.mkdtemp(prefix=request.node.name[:40] + "-", dir=base))


@pytest.fixture(scope="module")
def template(base: Path) -> Path:
    """An initialised, stopped data directory (with the managed configuration)."""
    var = base / "template" / "var"
    cluster = Cluster(Settings(var_dir=var, database_url=None))
    cluster.init()
    return cluster.datadir


@pytest.fixture()
def started() -> Iterator[list[Cluster]]:
    """Clusters a test started; all stopped at the end, whatever happened."""
    clusters: list[Cluster] = []
    yield clusters
    for c in clusters:
        try:
            c.down()
        except ClusterError:
            pass


def _copy(template: Path, var: Path, **settings: object) -> Cluster:
    var.mkdir(parents=True)
    subprocess.run(["cp", "-a", str(template), str(var / "pg")], check=True)
    return Cluster(Settings(var_dir=var, database_url=None, **settings))


def test_up_status_noop_down(tmp_path: Path, started: list[Cluster]) -> None:
    """First start runs initdb; the server listens on its Unix socket only."""
    settings = Settings(var_dir=tmp_path / "var", database_url=None)
    cluster = Cluster(settings)
    assert cluster.status()["running"] is False
    started.append(cluster)
    assert cluster.up() is True
    status = cluster.status()
    assert status["running"] and status["initialized"]
    assert status["tcp_url"] is None
    assert status["socket"] == str((tmp_path / "var").resolve() / ".s.PGSQL.5439")
    assert Path(str(status["socket"])).is_socket()
    assert (settings.var_dir / "pg" / "PG_VERSION").exists()
    info = PidFile.read(cluster.pidfile)
    assert info is not None and info.listen == "" and info.pid == status["pid"]
    # no TCP listener belongs to it (whatever else may listen on 5439 on this machine)
    assert info.pid not in _socket_pids({inode for inode, _ in _listening(5439)})
    assert cluster.up() is False  # already up: a no-op
    with psycopg.connect(str(status["url"])) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == "huegis"
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        assert "GTiff" in conn.execute("SHOW postgis.gdal_enabled_drivers").fetchone()[0]
    assert cluster.down() is True
    assert cluster.status()["running"] is False
    assert cluster.down() is False


def test_two_checkouts_start_at_once(tmp_path: Path, started: list[Cluster]) -> None:
    """Two fresh checkouts, initdb and start at the same moment: both answer, each its own."""
    clusters = [Cluster(Settings(var_dir=tmp_path / name / "var", database_url=None))
                for name in ("release", "branch")]
    started.extend(clusters)
    errors: list[BaseException] = []

    def up(c: Cluster) -> None:
        try:
            c.up()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=up, args=(c,)) for c in clusters]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, [getattr(e, "description", e) for e in errors]
    dirs = [_data_directory(c) for c in clusters]
    assert dirs == [str(c.datadir.resolve()) for c in clusters]
    with psycopg.connect(clusters[0].settings.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE only_in_release (id int)")
    with psycopg.connect(clusters[1].settings.dsn) as conn:
        assert conn.execute("SELECT to_regclass('only_in_release')").fetchone()[0] is None


def test_tcp_when_asked_and_port_taken_by_another_cluster(
        template: Path, tmp_path: Path, started: list[Cluster]) -> None:
    port = _free_port()
    first = _copy(template, tmp_path / "a" / "var", pg_port=port)
    started.append(first)
    assert first.up() is True
    tcp = first.status()["tcp_url"]
    assert tcp == f"postgresql://postgres@127.0.0.1:{port}/huegis"
    with psycopg.connect(str(tcp)) as conn:
        assert conn.execute("SHOW data_directory").fetchone()[0] == str(first.datadir.resolve())

    second = _copy(template, tmp_path / "b" / "var", pg_port=port)
    with pytest.raises(ClusterError) as exc:
        second.up()
    message = exc.value.description
    first_line = message.splitlines()[0]
    assert f"TCP port {port}" in first_line and "another Huế GIS cluster" in first_line
    assert str(first.datadir.resolve()) in first_line
    assert "HUEGIS_PG_PORT" in message.splitlines()[1]
    assert second.status()["running"] is False


def test_tcp_port_held_by_a_plain_program(template: Path, tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert port_holder(port).startswith(f"pid {os.getpid()} (")
        assert tcp_port_problem("127.0.0.1", port) is not None
        cluster = _copy(template, tmp_path / "var", pg_port=port)
        with pytest.raises(ClusterError) as exc:
            cluster.up()
    lines = exc.value.description.splitlines()
    assert f"TCP port {port} on 127.0.0.1 is taken by pid {os.getpid()}" in lines[0]
    assert lines[1].startswith("  what to do: set HUEGIS_PG_PORT to a free port")
    assert tcp_port_problem("127.0.0.1", port) is None  # released


def _start_server_user_sleeper() -> subprocess.Popen:
    kwargs = {"user": SERVER_USER} if SERVER_USER else {}
    return subprocess.Popen(["sleep", "120"], **kwargs)


@pytest.mark.parametrize("how", ["killed", "pid reused"])
def test_stale_pidfile_is_recovered(template: Path, tmp_path: Path, started: list[Cluster],
                                    how: str) -> None:
    """A server killed with SIGKILL leaves postmaster.pid; its pid may since belong to another
    process of the same user, which PostgreSQL alone takes for a live server."""
    cluster = _copy(template, tmp_path / "var")
    started.append(cluster)
    cluster.up()
    pid = cluster.status()["pid"]
    assert isinstance(pid, int)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    sleeper = None
    try:
        if how == "pid reused":
            deadline = time.monotonic() + 10   # let the orphans notice and exit first
            while _cwd_holders(cluster.datadir) and time.monotonic() < deadline:
                time.sleep(0.1)
            sleeper = _start_server_user_sleeper()
            lines = cluster.pidfile.read_text().splitlines()
            lines[0] = str(sleeper.pid)
            cluster.pidfile.write_text("\n".join(lines) + "\n")
        assert cluster.pidfile.exists()
        assert cluster.status()["running"] is False
        assert cluster.up() is True
        assert any("stale postmaster.pid" in n for n in cluster.notes)
        assert _data_directory(cluster) == str(cluster.datadir.resolve())
    finally:
        if sleeper:
            sleeper.kill()
            sleeper.wait()


def test_running_with_other_port_says_restart(template: Path, tmp_path: Path,
                                              started: list[Cluster]) -> None:
    cluster = _copy(template, tmp_path / "var")
    started.append(cluster)
    cluster.up()
    asking_tcp = Cluster(Settings(var_dir=tmp_path / "var", database_url=None,
                                  pg_port=_free_port()))
    with pytest.raises(ClusterError) as exc:
        asking_tcp.up()
    assert "Unix socket only" in exc.value.description.splitlines()[0]
    assert "huegis db down" in exc.value.description.splitlines()[1]


def test_server_failure_shows_log_tail(template: Path, tmp_path: Path) -> None:
    cluster = _copy(template, tmp_path / "var")
    with (cluster.datadir / "postgresql.conf").open("a") as fh:
        fh.write("shared_buffers = banana\n")
    with pytest.raises(ClusterError) as exc:
        cluster.up(timeout=20)
    lines = exc.value.description.splitlines()
    assert lines[0].startswith("the server did not start")
    assert lines[2] == f"  last lines of {cluster.logfile}:"
    assert any("banana" in ln for ln in lines[3:])
    assert cluster.status()["running"] is False


def test_missing_postgresql_and_postgis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        ) -> None:
    cluster = Cluster(Settings(var_dir=tmp_path / "var", database_url=None))
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("HUEGIS_PG_BINDIR", str(empty))
    with pytest.raises(ClusterError) as exc:
        cluster.up()
    assert exc.value.description.startswith("PostgreSQL server is not installed")
    assert "apt-get install -y postgresql-15" in exc.value.description

    # a server whose share directory has no PostGIS
    real = Path("/usr/lib/postgresql/15/bin")
    fake = tmp_path / "bin"
    fake.mkdir()
    for exe in ("initdb", "pg_ctl", "postgres"):
        (fake / exe).symlink_to(real / exe)
    share = tmp_path / "share"
    (share / "extension").mkdir(parents=True)
    (fake / "pg_config").write_text(f"#!/bin/sh\necho {share}\n")
    (fake / "pg_config").chmod(0o755)
    monkeypatch.setenv("HUEGIS_PG_BINDIR", str(fake))
    with pytest.raises(ClusterError) as exc:
        cluster.up()
    assert exc.value.description.startswith("PostGIS is not installed for PostgreSQL 15")
    assert "postgresql-15-postgis-3" in exc.value.description
    assert not (tmp_path / "var" / "pg").exists()


@pytest.fixture()
def tiny_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """Mount small tmpfs file systems (root only), unmounted at the end."""
    if not ROOT:
        pytest.skip("mounting a small file system needs root")
    mounts: list[Path] = []

    def mount(size_mb: int) -> Path:
        d = tmp_path / f"disk{len(mounts)}"
        d.mkdir()
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=755",
                              "tmpfs", str(d)], capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount tmpfs here: {res.stderr.strip()}")
        mounts.append(d)
        return d

    yield mount
    for d in mounts:
        subprocess.run(["umount", "-l", str(d)], check=False)


def test_disk_full(template: Path, tiny_disk: Callable[[int], Path]) -> None:
    # initdb itself runs out of space: ENOSPC in its output
    cluster = Cluster(Settings(var_dir=tiny_disk(8) / "var", database_url=None))
    cluster.settings.var_dir.mkdir()
    with pytest.raises(ClusterError) as exc:
        cluster.init()
    lines = exc.value.description.splitlines()
    assert lines[0].startswith("disk full: ") and str(cluster.settings.var_dir) in lines[0]
    assert "free some space" in lines[1]
    assert any("No space left on device" in ln for ln in lines[2:])

    # an initialised cluster on a disk with almost no room left: refused before starting
    size = int(subprocess.run(["du", "-sm", str(template)], capture_output=True, text=True,
                              check=True).stdout.split()[0])
    cluster = _copy(template, tiny_disk(size + 6) / "var")
    with pytest.raises(ClusterError) as exc:
        cluster.up()
    assert exc.value.description.startswith("disk full: ")
    assert cluster.status()["running"] is False


def test_socket_path_too_long(tmp_path: Path) -> None:
    var = tmp_path / ("x" * 60) / ("y" * 60)
    with pytest.raises(ClusterError) as exc:
        Cluster(Settings(var_dir=var, database_url=None)).up()
    assert "longer than the 107 bytes" in exc.value.description
    assert "HUEGIS_VAR_DIR" in exc.value.description


def test_holder_of_unknown_port_and_privileged_port() -> None:
    port = _free_port()
    assert port_holder(port) == "another program"
    if not ROOT:  # pragma: no cover - non-root
        assert "privileged" in str(tcp_port_problem("127.0.0.1", 80))
    assert "not an address" in str(tcp_port_problem("192.0.2.1", port))


def test_stale_pidfile_does_not_hide_a_live_server(template: Path, tmp_path: Path,
                                                    started: list[Cluster]) -> None:
    """The recovery never removes the pid file of a running server."""
    cluster = _copy(template, tmp_path / "var")
    started.append(cluster)
    cluster.up()
    before = cluster.pidfile.read_text()
    again = Cluster(Settings(var_dir=tmp_path / "var", database_url=None))
    assert again.up() is False and again.notes == []
    assert cluster.pidfile.read_text() == before
