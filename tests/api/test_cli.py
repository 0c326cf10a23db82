"""The ``huegis`` command line against a real database: demo load, errors, catalog."""

from collections.abc import Iterator

import mapbox_vector_tile
import morecantile
import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app
from gis import db
from gis.settings import Settings

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_url(server_url: str) -> Iterator[str]:
    """A fresh database loaded by ``huegis load demo`` (small sizes)."""
    with db.scratch_database(server_url, "huegis_demo") as url:
        yield url


def _env(url: str, tmp: str) -> dict[str, str]:
    return {"HUEGIS_DATABASE_URL": url, "HUEGIS_VAR_DIR": tmp}


@pytest.fixture(scope="module")
def demo_env(demo_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = _env(demo_url, str(tmp_path_factory.mktemp("demo-var")))
    r = runner.invoke(app, ["load", "demo", "--parcels", "3000", "--incidents", "500",
                            "--construction", "200"], env=env)
    assert r.exit_code == 0, r.output
    return env


def test_load_demo(demo_env: dict[str, str], demo_url: str) -> None:
    with psycopg.connect(demo_url) as conn:
        counts = dict(conn.execute(
            "SELECT 'parcels', count(*) FROM land_parcels UNION ALL "
            "SELECT 'incidents', count(*) FROM incidents UNION ALL "
            "SELECT 'construction', count(*) FROM construction UNION ALL "
            "SELECT 'wards', count(*) FROM wards UNION ALL "
            "SELECT 'rasters', count(*) FROM raster_datasets").fetchall())
        synthetic = conn.execute("SELECT bool_and(source = 'synthetic') FROM land_parcels"
                                 ).fetchone()[0]
    assert counts == {"parcels": 3000, "incidents": 500, "construction": 200, "wards": 40,
                      "rasters": 2}
    assert synthetic
    assert db.current_revision(demo_url) == db.head_revision()


def test_load_demo_if_empty_is_a_noop(demo_env: dict[str, str]) -> None:
    r = runner.invoke(app, ["load", "demo", "--if-empty"], env=demo_env)
    assert r.exit_code == 0 and "already loaded" in r.output


def test_demo_tile_of_central_hue_shows_parcels(demo_env: dict[str, str], demo_url: str) -> None:
    settings = Settings(database_url=demo_url, var_dir=demo_env["HUEGIS_VAR_DIR"])
    t = morecantile.tms.get("WebMercatorQuad").tile(107.585, 16.463, 15)
    with TestClient(create_app(settings)) as client:
        r = client.get(f"/collections/parcels/tiles/WebMercatorQuad/{t.z}/{t.y}/{t.x}")
    assert r.status_code == 200
    feats = mapbox_vector_tile.decode(r.content)["parcels"]["features"]
    assert len(feats) > 10
    assert set(feats[0]["properties"]) == {"land_use"}  # z15: what the map draws
    assert not any("owner_name" in f["properties"] for f in feats)


def test_layers_lists_the_catalog() -> None:
    r = runner.invoke(app, ["layers"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    for layer_id in ("wards", "parcels", "flood-depth", "incidents"):
        assert layer_id in r.output


def test_db_status_reports_schema(database_url: str, tmp_path) -> None:
    r = runner.invoke(app, ["db", "status"], env=_env(database_url, str(tmp_path)))
    assert r.exit_code == 0 and db.head_revision() in r.output


@pytest.mark.parametrize(("args", "message"), [
    (["import", "x.geojson", "--layer", "nope"], "unknown layer 'nope'"),
    (["import", "x.geojson", "--layer", "flood-depth"], "raster layer"),
    (["export", "--layer", "parcels", "--format", "shp"], "unknown format"),
])
def test_bad_cli_input_exits_non_zero(database_url: str, tmp_path, args: list[str],
                                      message: str) -> None:
    r = runner.invoke(app, args, env=_env(database_url, str(tmp_path)))
    assert r.exit_code == 2
    assert message in r.output


def test_load_demo_refuses_negative_sizes(database_url: str, tmp_path) -> None:
    r = runner.invoke(app, ["load", "demo", "--parcels", "-5"],
                      env={**_env(database_url, str(tmp_path)), "COLUMNS": "200"})
    assert r.exit_code == 2 and "greater than or equal to 0" in r.output
