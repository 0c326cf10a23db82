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


def test_serve_answers_over_http(database_url: str, tmp_path: Path) -> None:
    """Two worker processes, as in production."""
    port = _free_port()
    env = {**os.environ, "HUEGIS_DATABASE_URL": database_url, "HUEGIS_VAR_DIR": str(tmp_path)}
    huegis = Path(sys.executable).with_name("huegis")
    proc = subprocess.Popen([str(huegis), "serve", "--port", str(port), "--workers", "2"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = _get(f"{base}/health")
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        assert status == 200 and b'"ok"' in body
        status, body = _get(f"{base}/collections/wards/items?limit=1")
        assert status == 200 and b"FeatureCollection" in body
        status, body = _get(f"{base}/collections/nope")
        assert status == 404 and b"LayerNotFound" in body
    finally:
        proc.terminate()
        proc.wait(timeout=30)
