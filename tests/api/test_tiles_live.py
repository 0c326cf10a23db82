"""Real processes: `huegis serve` with two workers, and Debian's nginx in front of its disk
cache (deploy/nginx.conf). A direct SQL UPDATE must reach every worker and the files."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import mapbox_vector_tile
import morecantile
import psycopg
import pytest

from gis.settings import PROJECT_ROOT, Settings

WMQ = morecantile.tms.get("WebMercatorQuad")


def _get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, headers={"Connection": "close", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("condition not reached")


@pytest.fixture(scope="module")
def parcel(demo_settings: Settings) -> Iterator[tuple[int, str, float, float]]:
    """A demo parcel of central Huế (id, land use, lon, lat); its land use is restored."""
    with psycopg.connect(demo_settings.dsn) as conn:
        pid, lu, lon, lat = conn.execute(
            "SELECT id, land_use, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom))"
            " FROM land_parcels WHERE land_use <> 'NTD' ORDER BY geom <-> "
            "ST_SetSRID(ST_MakePoint(107.585, 16.463), 4326) LIMIT 1").fetchone()
    try:
        yield pid, lu, lon, lat
    finally:
        with psycopg.connect(demo_settings.dsn) as conn:
            conn.execute("UPDATE land_parcels SET land_use = %s WHERE id = %s", (lu, pid))


def _land_use(content: bytes, pid: int) -> str | None:
    if not content:
        return None
    for f in mapbox_vector_tile.decode(content).get("parcels", {}).get("features", []):
        if f.get("id") == pid:
            return f["properties"]["land_use"]
    return None


def _set_land_use(dsn: str, pid: int, value: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE land_parcels SET land_use = %s WHERE id = %s", (value, pid))


def test_direct_sql_update_reaches_both_workers(live_server: str, demo_settings: Settings,
                                               parcel) -> None:
    pid, lu, lon, lat = parcel
    t = WMQ.tile(lon, lat, 17)
    url = f"{live_server}/collections/parcels/tiles/WebMercatorQuad/17/{t.y}/{t.x}"
    # New connections spread over both workers: warm both caches.
    first = [_get(url) for _ in range(16)]
    assert all(_land_use(b, pid) == lu for _, _, b in first)
    assert len({h["etag"] for _, h, _ in first}) == 1
    _set_land_use(demo_settings.dsn, pid, "NTD")
    _eventually(lambda: _land_use(_get(url)[2], pid) == "NTD")
    # From then on, no worker serves the old tile.
    assert all(_land_use(_get(url)[2], pid) == "NTD" for _ in range(16))
    _set_land_use(demo_settings.dsn, pid, lu)
    _eventually(lambda: _land_use(_get(url)[2], pid) == lu)
    assert all(_land_use(_get(url)[2], pid) == lu for _ in range(16))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render_nginx_conf(prefix: Path, listen: str, upstream: str, cache_dir: Path) -> str:
    """deploy/nginx.conf with its placeholders filled in (as docs/deploy.md shows)."""
    text = (PROJECT_ROOT / "deploy" / "nginx.conf").read_text()
    user = "user root;" if os.geteuid() == 0 else ""  # workers must read the cache files
    for name, value in (("USER", user), ("PREFIX", str(prefix)), ("LISTEN", listen),
                        ("UPSTREAM", upstream), ("CACHE_DIR", str(cache_dir))):
        text = text.replace(f"@{name}@", value)
    return text


@pytest.fixture(scope="module")
def nginx(live_server: str, demo_settings: Settings,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(exe):
        pytest.fail("nginx is missing (Debian package nginx)")
    prefix = tmp_path_factory.mktemp("nginx")
    port = _free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(render_nginx_conf(prefix, f"127.0.0.1:{port}",
                                      live_server.removeprefix("http://"),
                                      demo_settings.tile_cache_path))
    check = subprocess.run([exe, "-t", "-p", str(prefix), "-e", str(prefix / "error.log"),
                            "-c", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([exe, "-p", str(prefix), "-e", str(prefix / "error.log"),
                             "-c", str(conf), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            _eventually(lambda: proc.poll() is None and _get(f"{base}/health")[0] == 200)
        except AssertionError:
            raise AssertionError((prefix / "error.log").read_text()) from None
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_nginx_passes_a_miss_then_serves_the_cached_file(nginx: str, demo_settings: Settings,
                                                         parcel) -> None:
    pid, lu, lon, lat = parcel
    t = WMQ.tile(lon, lat, 18)
    path = f"/collections/parcels/tiles/WebMercatorQuad/18/{t.y}/{t.x}"
    file = demo_settings.tile_cache_path / f"mvt/parcels/WebMercatorQuad/18/{t.x}/{t.y}.mvt"
    file.unlink(missing_ok=True)
    status, headers, miss = _get(nginx + path)
    assert status == 200 and "X-Tile-Cache" not in headers  # answered by the application
    assert headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    assert file.is_file()
    status, headers, hit = _get(nginx + path)
    assert status == 200 and headers.get("X-Tile-Cache") == "nginx"
    assert headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    assert hit == miss == file.read_bytes() and _land_use(hit, pid) == lu
    # A write deletes the file: nginx asks the application again, which answers fresh.
    _set_land_use(demo_settings.dsn, pid, "NTD")
    _eventually(lambda: not file.exists())
    status, headers, fresh = _get(nginx + path)
    assert "X-Tile-Cache" not in headers and _land_use(fresh, pid) == "NTD"
    _set_land_use(demo_settings.dsn, pid, lu)
    _eventually(lambda: _land_use(_get(nginx + path)[2], pid) == lu)
    # Everything else is proxied: metadata, errors, empty tiles.
    assert _get(nginx + "/tileMatrixSets")[0] == 200
    status, _, body = _get(nginx + "/collections/parcels/tiles/WebMercatorQuad/3/9/9")
    assert status == 404 and b"InvalidTile" in body
    sea = WMQ.tile(108.5, 17.5, 14)
    assert _get(f"{nginx}/collections/parcels/tiles/WebMercatorQuad/14/{sea.y}/{sea.x}"
                )[0] == 204


def test_nginx_serves_multi_layer_tiles_from_the_cache(nginx: str, parcel) -> None:
    _, _, lon, lat = parcel
    t = WMQ.tile(lon, lat, 16)
    path = f"/tiles/WebMercatorQuad/16/{t.y}/{t.x}?collections=wards,parcels"
    _, h1, first = _get(nginx + path)
    _, h2, second = _get(nginx + path)
    assert h2.get("X-Tile-Cache") == "nginx" and first == second
    assert set(mapbox_vector_tile.decode(second)) == {"wards", "parcels"}
    _, h3, _ = _get(nginx + path.replace("wards,parcels", "..%2Fx"))
    assert "X-Tile-Cache" not in h3
