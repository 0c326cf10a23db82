"""``huegis serve`` as a real process: uvicorn, the app factory, settings from the environment."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _serve(database_url: str, tmp_path: Path, *args: str, **env_vars: str
           ) -> tuple[subprocess.Popen, str]:
    """``huegis serve`` with ``args``, once it answers ``/health``."""
    port = _free_port()
    env = {**os.environ, "HUEGIS_DATABASE_URL": database_url, "HUEGIS_VAR_DIR": str(tmp_path),
           **env_vars}
    huegis = Path(sys.executable).with_name("huegis")
    proc = subprocess.Popen([str(huegis), "serve", "--port", str(port), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            status, body = _get(f"{base}/health")
            break
        except (urllib.error.URLError, ConnectionError):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                out = proc.stdout.read().decode()
                raise AssertionError(f"server did not start: {out}") from None
            time.sleep(0.3)
    assert status == 200 and b'"ok"' in body
    return proc, base


def _stop(proc: subprocess.Popen) -> str:
    """Stops the server; everything it wrote."""
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    return out.decode()


def test_serve_answers_over_http(database_url: str, tmp_path: Path) -> None:
    """Two worker processes, as in production."""
    proc, base = _serve(database_url, tmp_path, "--workers", "2")
    try:
        status, body = _get(f"{base}/collections/wards/items?limit=1")
        assert status == 200 and b"FeatureCollection" in body
        status, body = _get(f"{base}/collections/nope")
        assert status == 404 and b"LayerNotFound" in body
    finally:
        out = _stop(proc)
    # The access log is on by default: one line per request.
    assert '"GET /collections/nope HTTP/1.1" 404' in out, out


def test_serve_access_log_setting_and_option(database_url: str, tmp_path: Path) -> None:
    """``HUEGIS_ACCESS_LOG=false`` turns the per-request log line off (the server still
    logs its start), and ``--access-log`` / ``--no-access-log`` override the setting."""
    runs = {"setting off": ((), {"HUEGIS_ACCESS_LOG": "false"}),
            "option off": (("--no-access-log",), {}),
            "option on over the setting": (("--access-log",), {"HUEGIS_ACCESS_LOG": "false"})}
    logged = {}
    for name, (args, env) in runs.items():
        proc, base = _serve(database_url, tmp_path, *args, **env)
        try:
            assert _get(f"{base}/collections/nope")[0] == 404
        finally:
            out = _stop(proc)
        assert "Application startup complete" in out, (name, out)
        logged[name] = '"GET /collections/nope HTTP/1.1" 404' in out
    assert logged == {"setting off": False, "option off": False,
                      "option on over the setting": True}
