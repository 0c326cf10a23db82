"""What every benchmark script shares: free ports and a real ``huegis serve`` to measure."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until ``url`` answers; fail if the server ``proc`` exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def start_huegis(url: str, var_dir: Path, workers: int, settle: float = 0.0
                 ) -> tuple[subprocess.Popen, str]:
    """``huegis serve --workers N`` on database ``url``; returns the process and its base URL.

    ``settle`` seconds more after the first answer (every worker LISTENing, for tiles).
    No access log, like the peers (tipg under uvicorn at ``--log-level warning``, pygeoapi
    under gunicorn, TiTiler: none logs a line per request)."""
    port = free_port()
    env = {**os.environ, "HUEGIS_DATABASE_URL": url, "HUEGIS_VAR_DIR": str(var_dir),
           "HUEGIS_ACCESS_LOG": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port),
                             "--workers", str(workers)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/health", proc)
    time.sleep(settle)
    return proc, base
