"""``huegis db …`` and ``huegis serve`` as a user runs them: real processes, exit status and
the message on stderr (one line saying what, one saying what to do, no traceback).

As root the non-root path is run with ``runuser -u nobody``; the clusters live in a scratch
directory outside pytest's base (see tests/gis/test_cluster.py).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from gis.cluster import _make_traversable

ROOT = os.geteuid() == 0
HUEGIS = Path(sys.executable).with_name("huegis")


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="huegis-test-cli-"))
    d.chmod(0o711)
    if ROOT:  # `nobody` must reach the interpreter and the sources (search bit only, as
        # `huegis db up` does for the postgres user; a pyenv python may live under /root)
        for path in (Path(sys.executable).parent, Path(sys.executable).resolve().parent,
                     Path(__file__).resolve().parent):
            _make_traversable(path, "nobody")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _env(var: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUEGIS_")}
    return {**env, "HUEGIS_VAR_DIR": str(var), **extra}


def huegis(*args: str, env: dict[str, str], user: str | None = None,
           ) -> subprocess.CompletedProcess[str]:
    cmd = [str(HUEGIS), *args]
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, cwd="/")
    assert "Traceback" not in res.stdout + res.stderr, res.stderr
    return res


def _error_lines(res: subprocess.CompletedProcess[str]) -> list[str]:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    return res.stderr.splitlines()


def test_up_status_tcp_down(scratch: Path) -> None:
    """The URLs to connect with: the socket one always, the TCP one when asked for."""
    var = scratch / "my checkout" / "var"   # a space in the path, as users have
    env = _env(var)
    try:
        res = huegis("db", "up", env=env)
        assert res.returncode == 0, res.stderr
        assert res.stdout.startswith("started: postgresql://postgres@/huegis?host=")
        res = huegis("db", "status", env=env)
        assert res.returncode == 0, res.stderr
        rows = dict(line.split(None, 1) for line in res.stdout.splitlines() if line.strip()
                    and not line.startswith(("tcp", " ")))
        assert rows["running"] == "True"
        url = rows["url"].split()[0]
        assert "%20" in url
        with psycopg.connect(url) as conn:
            assert conn.execute("SHOW data_directory").fetchone()[0] == str(
                (var / "pg").resolve())
        assert "tcp url      off (for DBeaver/JDBC: set HUEGIS_PG_PORT" in res.stdout

        port = _free_port()
        res = huegis("db", "up", env=_env(var, HUEGIS_PG_PORT=str(port)))
        lines = _error_lines(res)   # running without TCP: says to restart it
        assert "Unix socket only" in lines[0] and "huegis db down" in lines[1]
        assert huegis("db", "down", env=env).returncode == 0
        env = _env(var, HUEGIS_PG_PORT=str(port))
        res = huegis("db", "up", env=env)
        assert res.returncode == 0, res.stderr
        assert f"TCP: postgresql://postgres@127.0.0.1:{port}/huegis" in res.stdout
        res = huegis("db", "status", env=env)
        assert (f"tcp url      postgresql://postgres@127.0.0.1:{port}/huegis  (DBeaver: "
                f"jdbc:postgresql://127.0.0.1:{port}/huegis, user postgres)") in res.stdout
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/huegis") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        huegis("db", "down", env=env)
    res = huegis("db", "status", env=env)
    assert "running      False" in res.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def held_port() -> Iterator[int]:
    """A TCP port this test process listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_db_up_tcp_port_taken(scratch: Path, held_port: int) -> None:
    var = scratch / "port-taken" / "var"
    res = huegis("db", "up", env=_env(var, HUEGIS_PG_PORT=str(held_port)))
    lines = _error_lines(res)
    assert lines[0].startswith(f"error (ClusterError): TCP port {held_port} on 127.0.0.1 is "
                               f"taken by pid {os.getpid()} (")
    assert lines[1].startswith("  what to do: set HUEGIS_PG_PORT to a free port, or unset it")
    assert not (var / "pg").exists()  # nothing was initialised


def test_serve_http_port_taken(scratch: Path, held_port: int) -> None:
    """Checked before anything else: the database is not even looked at."""
    env = _env(scratch / "serve", HUEGIS_DATABASE_URL="postgresql://x@127.0.0.1:1/none")
    res = huegis("serve", "--port", str(held_port), env=env)
    lines = _error_lines(res)
    assert lines[0].startswith(f"error (PortInUse): cannot serve on http://127.0.0.1:"
                               f"{held_port}: port {held_port} on 127.0.0.1 is taken by pid "
                               f"{os.getpid()} (")
    assert lines[1].startswith("  what to do: choose another port: make run PORT=")
    suggested = int(lines[1].split("PORT=")[1].split()[0])
    assert suggested > held_port
    with socket.socket() as s:
        s.bind(("127.0.0.1", suggested))   # the suggestion is free


def test_unwritable_var_dir(scratch: Path) -> None:
    var = scratch / "readonly"
    var.mkdir()
    if ROOT:
        user = "nobody"          # the directory stays root's, mode 755
    else:  # pragma: no cover - non-root run
        user = None
        var.chmod(0o555)
    res = huegis("db", "up", env=_env(var), user=user)
    lines = _error_lines(res)
    me = user or pwd.getpwuid(os.geteuid()).pw_name
    assert lines[0] == (f"error (ClusterError): {var} is not writable by user {me} "
                        "(Permission denied)")
    assert lines[1].startswith("  what to do: set HUEGIS_VAR_DIR to a directory")


@pytest.mark.skipif(not ROOT, reason="needs a second OS user")
def test_non_root_user_and_foreign_data_directory(scratch: Path) -> None:
    """A normal user runs its own cluster; root and that user each refuse the other's data
    directory with a message naming its owner."""
    nobody = pwd.getpwnam("nobody")
    var = scratch / "nobody" / "var"
    var.mkdir(parents=True)
    os.chown(var, nobody.pw_uid, nobody.pw_gid)
    env = _env(var)
    try:
        res = huegis("db", "up", env=env, user="nobody")
        assert res.returncode == 0, res.stderr
        with psycopg.connect(res.stdout.split("started: ")[1].split()[0]) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("huegis",)
        pid = (var / "pg" / "postmaster.pid").read_text().split()[0]
        uid = Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0]
        assert int(uid) == nobody.pw_uid          # the server runs as that user
        assert (var / "pg").stat().st_uid == nobody.pw_uid
    finally:
        assert huegis("db", "down", env=env, user="nobody").returncode == 0

    lines = _error_lines(huegis("db", "up", env=env))   # root: the server user is postgres
    assert lines[0] == (f"error (ClusterError): the data directory {var / 'pg'} belongs to "
                        "user nobody, not to postgres (who runs the server when you are root)")
    assert "runuser -u nobody" in lines[1]

    theirs = scratch / "root-made" / "var"
    (theirs / "pg").mkdir(parents=True)
    os.chown(theirs, nobody.pw_uid, nobody.pw_gid)
    lines = _error_lines(huegis("db", "up", env=_env(theirs), user="nobody"))
    assert lines[0] == (f"error (ClusterError): the data directory {theirs / 'pg'} belongs to "
                        "user root, not to you (nobody)")
