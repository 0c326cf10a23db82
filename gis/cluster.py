"""The project-managed PostgreSQL + PostGIS cluster (``./var/pg``, port 5439, socket in ``./var``).

It never collides with a system server: its own data directory, port and socket directory.
PostgreSQL refuses to run as root, so when we are root the server runs as the ``postgres`` OS
user (created by Debian's ``postgresql`` package).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from gis.errors import ClusterError
from gis.settings import Settings

PG_MAJOR_PREFERRED = ("15", "16", "17", "14", "13")
APT_PACKAGES = "postgresql-15 postgresql-15-postgis-3 postgresql-15-postgis-3-scripts"


def find_pg_bindir() -> Path:
    """Directory holding ``initdb``/``pg_ctl``/``postgres`` of an installed server."""
    env = os.environ.get("HUEGIS_PG_BINDIR")
    if env:
        return Path(env)
    for major in PG_MAJOR_PREFERRED:
        d = Path(f"/usr/lib/postgresql/{major}/bin")
        if (d / "initdb").exists() and (d / "pg_ctl").exists():
            return d
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise ClusterError(
        "PostgreSQL server binaries not found. Install them with:\n"
        f"  sudo apt-get install -y {APT_PACKAGES}")


def _is_root() -> bool:
    return os.geteuid() == 0


def _run_as_user() -> str | None:
    """OS user the server runs as: ``postgres`` when we are root, else ourselves (None)."""
    if not _is_root():
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as e:
        raise ClusterError("running as root needs the 'postgres' OS user "
                           "(apt-get install postgresql creates it)") from e
    return "postgres"


def _cmd(args: list[str], user: str | None) -> list[str]:
    if user is None:
        return args
    return ["runuser", "-u", user, "--", *args]


def _make_traversable(path: Path, user: str) -> None:
    """Let ``user`` reach ``path``: add the execute (search) bit on parents that lack it.

    A clone in a ``mktemp -d`` folder (mode 700, owned by root) is otherwise unreachable for
    the ``postgres`` user. Only the search bit is added; nothing becomes readable.
    """
    for parent in [path, *path.parents]:
        if parent == Path("/"):
            break
        probe = subprocess.run(["runuser", "-u", user, "--", "test", "-x", str(parent)],
                               capture_output=True)
        if probe.returncode != 0:
            mode = parent.stat().st_mode
            parent.chmod(mode | 0o001)


@dataclass
class Cluster:
    """Start, stop and inspect the managed cluster."""

    settings: Settings

    @property
    def datadir(self) -> Path:
        return self.settings.pg_dir

    @property
    def logfile(self) -> Path:
        return self.settings.var_dir / "pg.log"

    def _prepare_dirs(self, user: str | None) -> None:
        var = self.settings.var_dir
        var.mkdir(parents=True, exist_ok=True)
        if user:
            _make_traversable(var.resolve(), user)
            pw = pwd.getpwnam(user)
            # The server writes its socket and log in var/ and owns its data directory.
            os.chown(var, pw.pw_uid, pw.pw_gid)
            if self.datadir.exists():
                os.chown(self.datadir, pw.pw_uid, pw.pw_gid)

    def initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def status(self) -> dict[str, object]:
        """``{"initialized", "running", "port", "datadir", "pid"}`` of the managed cluster."""
        pid = None
        pidfile = self.datadir / "postmaster.pid"
        running = False
        if pidfile.exists():
            try:
                pid = int(pidfile.read_text().splitlines()[0])
                os.kill(pid, 0)
                running = True
            except (ValueError, ProcessLookupError, PermissionError, IndexError):
                running = False
        return {"initialized": self.initialized(), "running": running,
                "port": self.settings.pg_port, "datadir": str(self.datadir), "pid": pid,
                "url": self.settings.managed_url()}

    def up(self, timeout: float = 60.0) -> bool:
        """Initialise (first time) and start the cluster. Returns False if it was already up."""
        if self.status()["running"] and self._ready():
            return False
        bindir = find_pg_bindir()
        user = _run_as_user()
        self._prepare_dirs(user)
        if not self.initialized():
            self.datadir.mkdir(parents=True, exist_ok=True)
            if user:
                pw = pwd.getpwnam(user)
                os.chown(self.datadir, pw.pw_uid, pw.pw_gid)
            self.datadir.chmod(0o700)
            self._check(_cmd([str(bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres",
                              "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"], user),
                        "initdb")
            self._write_conf()
        self._check(_cmd([str(bindir / "pg_ctl"), "-D", str(self.datadir), "-l",
                          str(self.logfile), "-w", "-t", str(int(timeout)), "-o",
                          f"-p {self.settings.pg_port} -k {self.settings.socket_dir.resolve()} "
                          "-c listen_addresses=127.0.0.1", "start"], user), "pg_ctl start")
        deadline = time.monotonic() + timeout
        while not self._ready():
            if time.monotonic() > deadline:
                raise ClusterError(f"the cluster did not accept connections; see {self.logfile}")
            time.sleep(0.2)
        self.ensure_database(self.settings.pg_database)
        return True

    def down(self) -> bool:
        """Stop the cluster (fast shutdown). Returns False if it was not running."""
        if not self.status()["running"]:
            return False
        bindir = find_pg_bindir()
        self._check(_cmd([str(bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w",
                          "stop"], _run_as_user()), "pg_ctl stop")
        return True

    def _write_conf(self) -> None:
        conf = self.datadir / "postgresql.conf"
        extra = (
            "\n# Huế GIS managed cluster\n"
            "max_connections = 200\n"
            "shared_buffers = 512MB\n"
            "work_mem = 32MB\n"
            "maintenance_work_mem = 512MB\n"
            "fsync = on\n"
            "synchronous_commit = off\n"
            "max_wal_size = 4GB\n"
            "checkpoint_timeout = 15min\n"
            "jit = off\n"
            "random_page_cost = 1.1\n"
            "postgis.gdal_enabled_drivers = 'GTiff PNG JPEG'\n"
            "postgis.enable_outdb_rasters = on\n"
        )
        with conf.open("a") as fh:
            fh.write(extra)

    def _ready(self) -> bool:
        try:
            import psycopg

            with psycopg.connect(self.settings.managed_url("postgres"), connect_timeout=2):
                return True
        except Exception:
            return False

    def ensure_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.settings.managed_url("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                  (name,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    @staticmethod
    def _check(cmd: list[str], what: str) -> None:
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise ClusterError(f"{what} failed ({res.returncode}):\n{res.stderr or res.stdout}")
