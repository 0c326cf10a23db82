"""``huegis tiles seed | export | refresh`` on the demo database, read back by real readers."""

from __future__ import annotations

import gzip
import sqlite3
import subprocess
from pathlib import Path

import mapbox_vector_tile
import morecantile
import pyogrio
import pytest
from fastapi.testclient import TestClient
from pmtiles.reader import MmapSource, Reader
from pmtiles.tile import TileType
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app
from gis.settings import Settings
from gis.tiles.cache import etag_of
from tests.common import CENTRAL_HUE_BBOX

runner = CliRunner()
WMQ = morecantile.tms.get("WebMercatorQuad")
BBOX = ",".join(str(v) for v in CENTRAL_HUE_BBOX)


@pytest.fixture()
def env(demo_settings: Settings, tmp_path: Path) -> dict[str, str]:
    return {"HUEGIS_DATABASE_URL": demo_settings.dsn, "HUEGIS_VAR_DIR": str(tmp_path),
            "COLUMNS": "120"}


def test_seed_fills_the_disk_cache_the_server_then_serves(env: dict[str, str],
                                                          tmp_path: Path) -> None:
    r = runner.invoke(app, ["tiles", "seed", "--layer", "parcels", "--zoom", "13-15",
                            "--bbox", BBOX], env=env)
    assert r.exit_code == 0, r.output
    assert "seed parcels" in r.output and "tiles of parcels" in r.output
    root = tmp_path / "tile-cache" / "mvt" / "parcels" / "WebMercatorQuad"
    assert {p.name for p in root.iterdir()} == {"13", "14", "15"}
    t = WMQ.tile(107.585, 16.463, 15)
    seeded = root / "15" / str(t.x) / f"{t.y}.mvt"
    assert seeded.is_file()
    assert mapbox_vector_tile.decode(seeded.read_bytes())["parcels"]["features"]
    assert (tmp_path / "tile-cache" / ".huegis-changes").is_file()
    s = Settings(database_url=env["HUEGIS_DATABASE_URL"], var_dir=tmp_path)
    with TestClient(create_app(s)) as c:
        resp = c.get(f"/collections/parcels/tiles/WebMercatorQuad/15/{t.y}/{t.x}")
    assert resp.headers["etag"] == etag_of(seeded.read_bytes())


def test_seed_refuses_bad_input(env: dict[str, str]) -> None:
    for args, word in ((["--layer", "nope"], "LayerNotFound"),
                       (["--layer", "parcels", "--zoom", "16-10"], "zoom range"),
                       (["--layer", "parcels", "--bbox", "1,2,3"], "bbox"),
                       (["--layer", "parcels", "--tms", "Nope"], "TileMatrixSetNotFound")):
        r = runner.invoke(app, ["tiles", "seed", *args], env=env)
        assert r.exit_code == 2 and word in r.output, r.output


@pytest.fixture(scope="module")
def exports(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("exports")
    env = {"HUEGIS_DATABASE_URL": demo_settings.dsn, "HUEGIS_VAR_DIR": str(d)}
    out = {}
    for fmt in ("pmtiles", "mbtiles"):
        out[fmt] = d / f"hue.{fmt}"
        r = runner.invoke(app, ["tiles", "export", "--format", fmt, "--out", str(out[fmt]),
                                "--zoom", "10-14", "--bbox", BBOX], env=env)
        assert r.exit_code == 0, r.output
    return out


def test_pmtiles_export_reads_back_with_the_pmtiles_library(exports: dict[str, Path]) -> None:
    with exports["pmtiles"].open("rb") as f:
        reader = Reader(MmapSource(f))
        header, meta = reader.header(), reader.metadata()
        assert header["tile_type"] == TileType.MVT
        assert (header["min_zoom"], header["max_zoom"]) == (10, 14)
        assert {v["id"] for v in meta["vector_layers"]} >= {"parcels", "wards", "incidents"}
        t = WMQ.tile(107.585, 16.463, 14)
        layers = mapbox_vector_tile.decode(gzip.decompress(reader.get(14, t.x, t.y)))
    assert {"parcels", "wards"} <= set(layers)
    assert not any("owner_name" in f["properties"] for f in layers["parcels"]["features"])
    assert not any(k.startswith("reporter") for f in layers.get("incidents", {}).get(
        "features", []) for k in f["properties"])


def test_mbtiles_export_reads_back_with_gdal(exports: dict[str, Path]) -> None:
    path = str(exports["mbtiles"])
    names = [name for name, _ in pyogrio.list_layers(path)]
    assert {"parcels", "wards"} <= set(names)
    df = pyogrio.read_dataframe(path, layer="parcels")
    assert len(df) > 0 and "land_use" in df.columns and "owner_name" not in df.columns
    info = subprocess.run(["ogrinfo", "-ro", "-so", path, "parcels"], capture_output=True,
                          text=True, check=True).stdout
    assert "MBTiles" in subprocess.run(["ogrinfo", "-ro", path], capture_output=True,
                                       text=True).stdout + info or "parcels" in info
    with sqlite3.connect(path) as db:
        meta = dict(db.execute("SELECT name, value FROM metadata"))
        rows = db.execute("SELECT count(*) FROM tiles").fetchone()[0]
    assert meta["format"] == "pbf" and (meta["minzoom"], meta["maxzoom"]) == ("10", "14")
    assert rows > 0


def test_export_refuses_unknown_format(env: dict[str, str]) -> None:
    r = runner.invoke(app, ["tiles", "export", "--format", "shp"], env=env)
    assert r.exit_code == 2 and "pmtiles" in r.output
