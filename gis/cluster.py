"""The project-managed PostgreSQL + PostGIS cluster: data in ``var/pg``, socket in ``var/``.

By default the server listens only on its Unix socket in ``var/`` (``listen_addresses=''``):
its address is a path, so any number of checkouts run their clusters side by side without
choosing anything. TCP (on 127.0.0.1) is opened only when ``HUEGIS_PG_PORT`` asks for it, for
clients that cannot use a socket (DBeaver/JDBC). The socket is named ``.s.PGSQL.<port>``, with
port 5439 when no TCP port is set.

PostgreSQL refuses to run as root, so when we are root the server runs as the ``postgres`` OS
user (created by Debian's ``postgresql`` package).

Every failure of :meth:`Cluster.up` is a :class:`~gis.errors.ClusterError` whose description
says what went wrong (one line), what to do, and the last lines of the server log; the
messages are listed in ``docs/troubleshooting.md``.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from gis.errors import ClusterError
from gis.settings import Settings

PG_MAJOR_PREFERRED = ("15", "16", "17", "14", "13")
CONF_MARKER = "# Huế GIS managed cluster"
SOCKET_PATH_MAX = 107          # sizeof(sockaddr_un.sun_path) - 1 on Linux
MIN_FREE_INIT = 64 << 20       # initdb writes ~40 MB (one 16 MB WAL segment included)
MIN_FREE_START = 16 << 20
LOG_TAIL = 10


def _apt_packages(major: str = "15") -> str:
    return (f"postgresql-{major} postgresql-{major}-postgis-3 "
            f"postgresql-{major}-postgis-3-scripts postgresql-contrib")


def _fail(problem: str, fix: str, log: Path | None = None, offset: int = 0,
          extra: str = "") -> ClusterError:
    """The error of a failed step: problem (one line), what to do, the end of the log."""
    lines = [problem, f"  what to do: {fix}"]
    tail = _tail(log, offset) if log else []
    if extra.strip():
        tail = [ln for ln in extra.strip().splitlines() if ln.strip()][-LOG_TAIL:]
        lines.append("  last lines of its output:")
    elif tail:
        lines.append(f"  last lines of {log}:")
    lines += [f"    {ln[:300]}" for ln in tail]
    return ClusterError("\n".join(lines), problem=problem, fix=fix)


def _tail(path: Path, offset: int = 0, n: int = LOG_TAIL) -> list[str]:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [ln for ln in text.splitlines() if ln.strip()][-n:]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def find_pg_bindir() -> Path:
    """Directory holding ``initdb``/``pg_ctl``/``postgres`` of an installed server."""
    env = os.environ.get("HUEGIS_PG_BINDIR")
    candidates = [Path(env)] if env else [Path(f"/usr/lib/postgresql/{m}/bin")
                                          for m in PG_MAJOR_PREFERRED]
    if not env and shutil.which("pg_ctl"):
        candidates.append(Path(shutil.which("pg_ctl")).resolve().parent)
    for d in candidates:
        if all((d / exe).exists() for exe in ("initdb", "pg_ctl", "postgres")):
            return d
    where = f"HUEGIS_PG_BINDIR={env}" if env else "/usr/lib/postgresql/*/bin"
    raise _fail(f"PostgreSQL server is not installed (no initdb/pg_ctl/postgres in {where})",
                "run `make system` as root, or: sudo apt-get install -y " + _apt_packages())


def _pg_major(bindir: Path) -> str:
    res = subprocess.run([str(bindir / "postgres"), "-V"], capture_output=True, text=True)
    m = re.search(r"(\d+)(?:\.\d+)?", res.stdout)
    return m.group(1) if m else "15"


def check_postgis(bindir: Path) -> None:
    """Raise a ClusterError when PostGIS is not installed for the server in ``bindir``."""
    share = None
    if (bindir / "pg_config").exists():
        res = subprocess.run([str(bindir / "pg_config"), "--sharedir"], capture_output=True,
                             text=True)
        share = Path(res.stdout.strip()) if res.returncode == 0 else None
    major = _pg_major(bindir)
    share = share or Path(f"/usr/share/postgresql/{major}")
    missing = [ext for ext in ("postgis", "postgis_raster")
               if not (share / "extension" / f"{ext}.control").exists()]
    if missing:
        raise _fail(f"PostGIS is not installed for PostgreSQL {major} "
                    f"(no {missing[0]}.control in {share / 'extension'})",
                    "run `make system` as root, or: sudo apt-get install -y "
                    + _apt_packages(major))


def _is_root() -> bool:
    return os.geteuid() == 0


def _run_as_user() -> str | None:
    """OS user the server runs as: ``postgres`` when we are root, else ourselves (None)."""
    if not _is_root():
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise _fail("running as root needs the 'postgres' OS user to run the server",
                    "sudo apt-get install -y postgresql-15 (it creates the user)") from None
    return "postgres"


def _cmd(args: list[str], user: str | None) -> list[str]:
    if user is None:
        return args
    return ["runuser", "-u", user, "--", *args]


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


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


# ---------------------------------------------------------------- processes, ports, pid files

def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace"
                                                                ).split("\0")[:-1]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a killed server nobody reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _cwd_holders(datadir: Path) -> list[int]:
    """Pids whose working directory is ``datadir``: every process of a PostgreSQL server has its
    data directory as cwd. Processes of other users are not visible to a non-root user, but a
    server always runs as the owner of its data directory: ours are visible."""
    target = str(datadir.resolve())
    found: list[int] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.readlink(proc / "cwd") == target:
                found.append(int(proc.name))
        except OSError:
            continue
    return sorted(found)


def _postgres_datadir(pid: int) -> str | None:
    """Data directory of a PostgreSQL process (``-D`` argument, else its cwd)."""
    if _comm(pid) not in ("postgres", "postmaster"):
        return None
    args = _cmdline(pid)
    if "-D" in args[:-1]:
        return args[args.index("-D") + 1]
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def _listening(port: int) -> list[tuple[int, int]]:
    """``(inode, uid)`` of the sockets listening on TCP ``port`` (any address)."""
    out = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if len(f) > 9 and f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                out.append((int(f[9]), int(f[7])))
    return out


def _socket_pids(inodes: set[int]) -> list[int]:
    targets = {f"socket:[{i}]" for i in inodes}
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in targets:
                    pids.append(int(proc.name))
                    break
        except OSError:
            continue
    return sorted(pids)


def _ask_postgres(port: int) -> str | None:
    """Data directory of a PostgreSQL on 127.0.0.1:``port`` that trusts ``postgres`` (as every
    managed cluster does), when its process is not visible to us."""
    try:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                             connect_timeout=2) as conn:
            return str(conn.execute("SHOW data_directory").fetchone()[0])
    except Exception:  # noqa: BLE001 - not a PostgreSQL we may ask: say nothing
        return None


def _describe_cluster(datadir: str) -> str:
    try:
        ours = CONF_MARKER in (Path(datadir) / "postgresql.conf").read_text(errors="replace")
    except OSError:
        ours = Path(datadir).name == "pg" and Path(datadir).parent.name == "var"
    kind = "another Huế GIS cluster" if ours else "a PostgreSQL server"
    return f"{kind} (data directory {datadir})"


def port_holder(port: int) -> str:
    """Who listens on TCP ``port`` here, in words: another Huế GIS cluster and its data
    directory, another PostgreSQL, a process and its command line, or the owning user.

    Example
    -------
    >>> port_holder(1)   # nobody listens on port 1
    'another program'
    """
    socks = _listening(port)
    pids = _socket_pids({inode for inode, _ in socks})
    if pids:
        pid = pids[0]
        datadir = _postgres_datadir(pid)
        if datadir:
            return f"{_describe_cluster(datadir)}, pid {pid}"
        cmd = " ".join(_cmdline(pid)) or _comm(pid)
        return f"pid {pid} ({cmd[:120]})"
    datadir = _ask_postgres(port) if socks else None
    if datadir:
        return _describe_cluster(datadir)
    if socks:
        return (f"a process of user {_user_name(socks[0][1])} (its pid is not visible to you; "
                f"`sudo ss -ltnp 'sport = :{port}'` shows it)")
    return "another program"


def tcp_port_problem(host: str, port: int) -> str | None:
    """None when a server can listen on ``host:port``; else why not, naming who holds it.

    Example
    -------
    >>> tcp_port_problem("127.0.0.1", 0) is None
    True
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        return f"cannot resolve host {host!r} ({e.strerror})"
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as servers do
        try:
            s.bind(addr)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is taken by {port_holder(port)}"
            if e.errno == errno.EACCES:
                return f"port {port} is privileged (below 1024: root only)"
            if e.errno == errno.EADDRNOTAVAIL:
                return f"{host} is not an address of this machine"
            return f"cannot listen on {host}:{port} ({e.strerror})"
    return None


def free_port_after(host: str, port: int) -> int:
    """The first port above ``port`` a server could listen on (for suggestions)."""
    for candidate in range(port + 1, min(port + 200, 65535)):
        if tcp_port_problem(host, candidate) is None:
            return candidate
    return port + 1


@contextmanager
def _flock(path: Path, on_error: Callable[[Path, OSError], Exception]) -> Iterator[None]:
    """An exclusive lock on ``path`` (one start at a time per checkout)."""
    try:
        fh = path.open("a")
    except OSError as e:
        raise on_error(path.parent, e) from None
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


@dataclass(frozen=True)
class PidFile:
    """The first lines of ``postmaster.pid`` (also the format of the socket lock file)."""

    pid: int
    datadir: str
    port: int
    socket_dir: str
    listen: str

    @classmethod
    def read(cls, path: Path) -> PidFile | None:
        try:
            lines = path.read_text().splitlines()
            return cls(int(lines[0]), lines[1], int(lines[3]), lines[4],
                       lines[5].strip() if len(lines) > 5 else "")
        except (OSError, ValueError, IndexError):
            return None


# --------------------------------------------------------------------------------- the cluster

@dataclass
class Cluster:
    """Start, stop and inspect the managed cluster."""

    settings: Settings
    notes: list[str] = field(default_factory=list)   # what up() repaired on the way

    @property
    def datadir(self) -> Path:
        return self.settings.pg_dir

    @property
    def logfile(self) -> Path:
        return self.settings.var_dir / "pg.log"

    @property
    def pidfile(self) -> Path:
        return self.datadir / "postmaster.pid"

    def initialized(self) -> bool:
        try:
            return (self.datadir / "PG_VERSION").exists()
        except PermissionError:
            return True  # another user's data directory: it exists


    # -------------------------------------------------------------------------- inspection
    def server(self) -> PidFile | None:
        """The running postmaster of this data directory (from ``postmaster.pid``), or None
        when there is none or the pid file is stale."""
        info = PidFile.read(self.pidfile)
        if info is None or not _alive(info.pid):
            return None
        if _comm(info.pid) not in ("postgres", "postmaster"):
            return None  # the pid was reused by another program
        datadir = _postgres_datadir(info.pid)
        if datadir is not None and Path(datadir).resolve() != self.datadir.resolve():
            return None  # reused by the server of another data directory
        return info

    def tcp_url(self, info: PidFile | None = None, database: str | None = None) -> str | None:
        """``postgresql://postgres@127.0.0.1:<port>/<db>`` when TCP is (or will be) open."""
        db = database or self.settings.pg_database
        if info is not None:
            if not info.listen:
                return None
            host = "127.0.0.1" if info.listen in ("*", "0.0.0.0") else info.listen
            return f"postgresql://postgres@{host}:{info.port}/{db}"
        if self.settings.pg_port:
            return f"postgresql://postgres@127.0.0.1:{self.settings.pg_port}/{db}"
        return None

    def status(self) -> dict[str, object]:
        """Initialised, running (pid), data directory, socket and TCP URLs of the cluster."""
        info = self.server()
        socket_port = info.port if info else self.settings.pg_socket_port
        socket_dir = Path(info.socket_dir) if info else self.settings.socket_dir.resolve()
        db = self.settings.pg_database
        # a pid file we may not read (another user's cluster): ask the socket
        return {"initialized": self.initialized(), "running": info is not None or self._ready(),
                "pid": info.pid if info else None, "datadir": str(self.datadir),
                "socket": str(socket_dir / f".s.PGSQL.{socket_port}"),
                "url": f"postgresql://postgres@/{db}?host={quote(str(socket_dir), safe='/')}"
                       f"&port={socket_port}",
                "tcp_url": self.tcp_url(info) if info else None}

    # ------------------------------------------------------------------------------ up/down
    def up(self, timeout: float = 60.0) -> bool:
        """Initialise (first time) and start the cluster. Returns False if it was already up.

        Raises a ClusterError saying what went wrong and what to do otherwise.
        """
        if self._already_up(timeout):
            return False
        bindir = find_pg_bindir()
        check_postgis(bindir)
        user = _run_as_user()
        self._check_dirs(user)
        with _flock(self.settings.var_dir / ".cluster.lock", self._dir_error):
            if self._already_up(timeout):  # another process started it meanwhile
                return False
            self._recover_stale_pidfile()
            if self.settings.pg_port:
                problem = tcp_port_problem("127.0.0.1", self.settings.pg_port)
                if problem:
                    raise self._port_error(problem)
            if not self.initialized():
                self._check_space(MIN_FREE_INIT)
                self.init(bindir)
            self._check_space(MIN_FREE_START)
            self._start(bindir, user, timeout)
        self._wait_ready(timeout)
        self.ensure_database(self.settings.pg_database)
        return True

    def down(self) -> bool:
        """Stop the cluster (fast shutdown). Returns False if it was not running."""
        if self.server() is None:
            return False
        bindir = find_pg_bindir()
        res = subprocess.run(_cmd([str(bindir / "pg_ctl"), "-D", str(self.datadir), "-m",
                                   "fast", "-w", "stop"], _run_as_user()),
                             capture_output=True, text=True)
        if res.returncode != 0:
            said = (res.stderr or res.stdout).strip().splitlines() or [""]
            raise _fail(f"could not stop the cluster in {self.datadir}: {said[-1]}",
                        "stop it as the user who started it, or kill its pid "
                        "(see `huegis db status`)", self.logfile)
        return True

    def init(self, bindir: Path | None = None) -> None:
        """Create the data directory with ``initdb`` and the managed configuration."""
        bindir = bindir or find_pg_bindir()
        user = _run_as_user()
        self._check_dirs(user)
        try:
            self.datadir.mkdir(parents=True, exist_ok=True)
            if user:
                pw = pwd.getpwnam(user)
                os.chown(self.datadir, pw.pw_uid, pw.pw_gid)
            self.datadir.chmod(0o700)
        except OSError as e:
            raise self._dir_error(self.datadir, e) from None
        if any(self.datadir.iterdir()):
            raise _fail(f"{self.datadir} is not empty but holds no database cluster "
                        "(no PG_VERSION)",
                        f"remove it (`make clean-db`, or rm -rf {self.datadir}) if nothing "
                        "in it is needed; `huegis db up` then creates a new one")
        res = subprocess.run(_cmd([str(bindir / "initdb"), "-D", str(self.datadir), "-U",
                                   "postgres", "--auth=trust", "-E", "UTF8",
                                   "--locale=C.UTF-8"], user), capture_output=True, text=True)
        if res.returncode != 0:
            out = res.stdout + res.stderr
            problem, fix = self._diagnose(out) or (
                f"initdb failed ({res.returncode}) in {self.datadir}",
                "read the output below; `make clean-db` removes a half-made data directory")
            raise _fail(problem, fix, extra=out)
        self._write_conf()

    # ------------------------------------------------------------------------------ helpers
    def _already_up(self, timeout: float) -> bool:
        info = self.server()
        if info is None:
            return False
        want = self.settings.pg_socket_port
        if info.port != want or (self.settings.pg_port and not info.listen):
            now = (f"port {info.port}, TCP on {info.listen}" if info.listen
                   else f"port {info.port}, Unix socket only")
            asked = (f"HUEGIS_PG_PORT={self.settings.pg_port}" if self.settings.pg_port
                     else "no HUEGIS_PG_PORT (Unix socket, port 5439)")
            raise _fail(f"the managed cluster in {self.datadir} is running with {now}, "
                        f"but {asked} is set now",
                        "restart it to apply the setting: `huegis db down` then `huegis db up`"
                        + (f", or set HUEGIS_PG_PORT={info.port}" if info.listen else ""),
                        self.logfile, max(0, _size(self.logfile) - 4000))
        self._wait_ready(timeout)
        self.ensure_database(self.settings.pg_database)
        return True

    def _dir_error(self, path: Path, e: OSError) -> ClusterError:
        me = _user_name(os.geteuid())
        if e.errno == errno.ENOSPC:
            return self._space_error()
        if e.errno == errno.EROFS:
            return _fail(f"{path} is on a read-only file system",
                         "set HUEGIS_VAR_DIR to a writable directory", self.logfile)
        if e.errno in (errno.EACCES, errno.EPERM):
            return _fail(f"{path} is not writable by user {me} ({e.strerror})",
                         f"set HUEGIS_VAR_DIR to a directory {me} can write, or give it to "
                         f"{me}: sudo chown -R {me} {path}", self.logfile)
        return _fail(f"cannot use {path}: {e.strerror}",
                     "set HUEGIS_VAR_DIR to a directory you can write", self.logfile)

    def _check_dirs(self, user: str | None) -> None:
        """The var and data directories exist or can be made, and belong to the server user."""
        var = self.settings.var_dir
        sock = var.resolve() / f".s.PGSQL.{self.settings.pg_socket_port}"
        if len(str(sock)) > SOCKET_PATH_MAX:
            raise _fail(f"the socket path {sock} is longer than the {SOCKET_PATH_MAX} bytes "
                        "Unix sockets allow",
                        "move the checkout to a shorter path, or set HUEGIS_VAR_DIR to one "
                        "(e.g. ~/.huegis-var)")
        try:
            var.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise self._dir_error(var, e) from None
        if user:  # root: the postgres user must own var/ and the data directory
            self._prepare_root_dirs(user)
            return
        me = os.geteuid()
        for path in (self.datadir, var):   # the owner of the data directory tells most
            if not path.exists():
                continue
            owner = path.stat().st_uid
            if path == self.datadir and owner != me:
                raise _fail(f"the data directory {path} belongs to user {_user_name(owner)}, "
                            f"not to you ({_user_name(me)})",
                            f"run as {_user_name(owner)} (or as root, if it was made by a "
                            f"root `make run`), or use your own: HUEGIS_VAR_DIR=<your dir>, or "
                            f"sudo chown -R {_user_name(me)} {var}", self.logfile)
            if not os.access(path, os.W_OK | os.X_OK):
                raise self._dir_error(path, PermissionError(errno.EACCES, "Permission denied"))

    def _prepare_root_dirs(self, user: str) -> None:
        var = self.settings.var_dir
        try:
            pw = pwd.getpwnam(user)
            if self.initialized() and self.datadir.stat().st_uid != pw.pw_uid:
                owner = _user_name(self.datadir.stat().st_uid)
                raise _fail(f"the data directory {self.datadir} belongs to user {owner}, not "
                            f"to {user} (who runs the server when you are root)",
                            f"run as {owner} (runuser -u {owner} -- make run), or use another "
                            f"HUEGIS_VAR_DIR, or give it to {user}: chown -R {user} "
                            f"{self.datadir}", self.logfile)
            # The server writes its socket and log in var/ and owns its data directory.
            os.chown(var, pw.pw_uid, pw.pw_gid)
            if self.datadir.exists():
                os.chown(self.datadir, pw.pw_uid, pw.pw_gid)
        except OSError as e:
            raise self._dir_error(var, e) from None
        probe = ["runuser", "-u", user, "--", "test", "-w", str(var)]
        if subprocess.run(probe, capture_output=True).returncode == 0:
            return
        try:
            _make_traversable(var.resolve(), user)
        except OSError as e:
            raise self._dir_error(var, e) from None
        if subprocess.run(probe, capture_output=True).returncode != 0:
            raise _fail(f"{var} is not writable by the {user} user, who runs the server",
                        f"set HUEGIS_VAR_DIR to a directory on a local disk, or chown {user} "
                        f"{var}", self.logfile)

    def _recover_stale_pidfile(self) -> None:
        """Remove ``postmaster.pid`` and the socket lock left by a killed server, once none
        of its processes is left (called only when no live server owns the pid file)."""
        sock_lock = self.settings.socket_dir / f".s.PGSQL.{self.settings.pg_socket_port}.lock"
        other = PidFile.read(sock_lock)
        if other is not None and not _alive(other.pid):
            sock_lock.unlink(missing_ok=True)
        info = PidFile.read(self.pidfile)
        if info is None:
            return
        holders = _cwd_holders(self.datadir)
        deadline = time.monotonic() + 10
        while holders and time.monotonic() < deadline:   # orphans of a killed postmaster exit
            time.sleep(0.2)                              # as soon as they notice
            holders = _cwd_holders(self.datadir)
        if holders:
            raise _fail(f"processes {', '.join(map(str, holders))} of a stopped server still "
                        f"use {self.datadir}",
                        f"wait for them to exit, or end them: kill {' '.join(map(str, holders))}",
                        self.logfile, max(0, _size(self.logfile) - 4000))
        self.pidfile.unlink(missing_ok=True)
        self.notes.append(f"removed the stale postmaster.pid of pid {info.pid} "
                          "(a server that was killed)")

    def _space_error(self, free: int | None = None) -> ClusterError:
        var = self.settings.var_dir
        if free is None:
            try:
                free = shutil.disk_usage(var).free
            except OSError:
                free = 0
        return _fail(f"disk full: {free >> 20} MB free on the disk holding {var}",
                     "free some space (or set HUEGIS_VAR_DIR to a directory on another disk), "
                     "then run it again", self.logfile, max(0, _size(self.logfile) - 4000))

    def _check_space(self, need: int) -> None:
        try:
            free = shutil.disk_usage(self.settings.var_dir).free
        except OSError:
            return
        if free < need:
            raise self._space_error(free)

    def _diagnose(self, text: str) -> tuple[str, str] | None:
        """Problem and fix for a known failure in initdb or server output."""
        port = self.settings.pg_port
        if "No space left on device" in text:
            err = self._space_error()
            return err.details["problem"], err.details["fix"]
        if "Address already in use" in text and port and "Unix" not in text:
            return (f"TCP port {port} on 127.0.0.1 is taken by {port_holder(port)}",
                    self._port_fix())
        sock_lock = self.settings.socket_dir / f".s.PGSQL.{self.settings.pg_socket_port}.lock"
        if "lock file" in text and ".s.PGSQL" in text:
            other = PidFile.read(sock_lock)
            who = f"data directory {other.datadir}, pid {other.pid}" if other else "unknown"
            return (f"the socket {sock_lock.with_suffix('')} is used by another server ({who})",
                    "stop that server, or give this one another HUEGIS_VAR_DIR")
        if "wrong ownership" in text or "invalid permissions" in text:
            return (f"the data directory {self.datadir} has the wrong owner or mode",
                    "it must belong to the server user with mode 0700: "
                    f"`sudo chown -R {_user_name(os.geteuid())} {self.datadir}` and "
                    f"`chmod 700 {self.datadir}`, or set HUEGIS_VAR_DIR")
        if "Permission denied" in text:
            return (f"permission denied in {self.settings.var_dir}",
                    "set HUEGIS_VAR_DIR to a directory you own, or fix the owner with chown")
        if "incompatible with server" in text:
            return (f"{self.datadir} was created by another PostgreSQL version",
                    "install that version, or remove the data directory (`make clean-db`: "
                    "the demo is loaded again by `make run`)")
        if "is still in use" in text or "lock file" in text and "already exists" in text:
            return (f"another server still holds {self.datadir}",
                    "stop it (`huegis db down`) or wait for its processes to exit")
        if "could not create shared memory" in text or "out of memory" in text.lower():
            return ("not enough memory for the server's shared_buffers",
                    f"lower shared_buffers in {self.datadir / 'postgresql.conf'}")
        if "too long" in text and "socket" in text.lower():
            return ("the Unix socket path is too long",
                    "set HUEGIS_VAR_DIR to a shorter path")
        return None

    def _port_fix(self) -> str:
        return ("set HUEGIS_PG_PORT to a free port, or unset it: the managed cluster then "
                f"listens only on its Unix socket in {self.settings.var_dir}")

    def _port_error(self, problem: str) -> ClusterError:
        return _fail(f"TCP {problem}", self._port_fix(), self.logfile,
                     max(0, _size(self.logfile) - 4000))

    def _start(self, bindir: Path, user: str | None, timeout: float) -> None:
        port = self.settings.pg_socket_port
        listen = "127.0.0.1" if self.settings.pg_port else ""
        opts = (f"-p {port} -k {shlex.quote(str(self.settings.socket_dir.resolve()))} "
                f"-c listen_addresses={shlex.quote(listen)}")
        offset = _size(self.logfile)
        res = subprocess.run(_cmd([str(bindir / "pg_ctl"), "-D", str(self.datadir.resolve()),
                                   "-l", str(self.logfile), "-w", "-t", str(int(timeout)),
                                   "-o", opts, "start"], user), capture_output=True, text=True)
        if res.returncode == 0:
            return
        log = "\n".join(_tail(self.logfile, offset, 200))
        found = self._diagnose(log + "\n" + res.stderr + res.stdout)
        if found is None and "did not start in time" in res.stdout + res.stderr:
            found = (f"the server did not accept connections within {int(timeout)} s",
                     "it may still be recovering: run `huegis db up` again in a minute")
        problem, fix = found or (f"the server did not start (pg_ctl exit {res.returncode})",
                                 "read the log lines below")
        extra = "" if _tail(self.logfile, offset) else res.stderr + res.stdout
        raise _fail(problem, fix, self.logfile, offset, extra=extra)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready():
            if time.monotonic() > deadline:
                raise _fail(f"the cluster did not accept connections within {int(timeout)} s",
                            "see the log lines below; `huegis db down && huegis db up` "
                            "restarts it", self.logfile, max(0, _size(self.logfile) - 4000))
            time.sleep(0.2)

    def _write_conf(self) -> None:
        conf = self.datadir / "postgresql.conf"
        extra = (
            f"\n{CONF_MARKER}\n"
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
        except Exception:  # noqa: BLE001 - not ready, whatever the reason
            return False

    def ensure_database(self, name: str) -> None:
        """Create database ``name`` in the cluster unless it exists."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.settings.managed_url("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                  (name,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
