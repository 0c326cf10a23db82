"""The planners' notebooks run top to bottom on the demo database (nbclient), and their
figures agree with independent computations."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import psycopg
import pytest
import rasterio
from nbclient import NotebookClient

from gis.settings import PROJECT_ROOT

NOTEBOOKS = PROJECT_ROOT / "notebooks"
NAMES = ["parcels_land_use_by_ward", "flood_exposure_of_parcels", "incident_hotspots_and_sla"]


@pytest.fixture(scope="module")
def executed(demo_settings, tmp_path_factory, monkeypatch_module) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("notebooks")
    monkeypatch_module.setenv("HUEGIS_DATABASE_URL", demo_settings.dsn)
    monkeypatch_module.setenv("HUEGIS_NOTEBOOK_OUT", str(out))
    summaries = {}
    for name in NAMES:
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        NotebookClient(nb, timeout=180, kernel_name="python3",
                       resources={"metadata": {"path": str(PROJECT_ROOT)}}).execute()
        assert (out / f"{name}.html").stat().st_size > 10_000
        assert "leaflet" in (out / f"{name}.html").read_text().lower()
        summaries[name] = json.loads((out / f"{name}.json").read_text())
    return summaries


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def sql(dsn: str, query: str, *params):
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_are_committed_clean_and_read_no_personal_data(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert not re.search(r"owner_name|reporter_", code)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_parcels_by_ward(executed, demo_settings):
    s = executed["parcels_land_use_by_ward"]
    (n, wards), = sql(demo_settings.dsn, "SELECT count(*), count(DISTINCT w.gso_code) "
                      "FROM land_parcels p JOIN wards w ON w.gso_code = p.ward_code")
    assert s["parcels"] == n > 0 and s["wards"] == wards


def test_flood_exposure(executed, demo_settings):
    s = executed["flood_exposure_of_parcels"]
    rows = sql(demo_settings.dsn,
               "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(ST_PointOnSurface(geom), 9214)"
               " AS p FROM land_parcels ORDER BY id LIMIT 50000) t")
    (path,), = sql(demo_settings.dsn, "SELECT path FROM raster_datasets WHERE id = 'flood-depth'")
    with rasterio.open(path) as src:
        depths = [v[0] for v in src.sample(rows)]
        nodata = src.nodata
    exposed = sum(1 for d in depths if d != nodata and d >= 0.05)
    assert s["parcels"] == len(rows)
    # Representative points may differ from PostGIS's by a raster cell at most on the edges.
    assert abs(s["exposed"] - exposed) <= 0.01 * len(rows)
    assert 0 < s["max_depth_m"] <= 10


def test_incident_hotspots_and_sla(executed, demo_settings):
    s = executed["incident_hotspots_and_sla"]
    (n, on_time, overdue), = sql(
        demo_settings.dsn,
        "SELECT count(*), round(100.0 * count(*) FILTER (WHERE status = 'resolved' AND "
        "resolved_at <= sla_due_at) / nullif(count(*) FILTER (WHERE status = 'resolved'), 0), 1),"
        " count(*) FILTER (WHERE status NOT IN ('resolved', 'rejected', 'duplicate') "
        "AND sla_due_at < now()) FROM incidents")
    assert s["incidents"] == n > 0
    assert s["on_time_pct"] == pytest.approx(float(on_time), abs=0.11)
    assert abs(s["overdue_open"] - overdue) <= 2  # seconds pass between the two counts
    assert 0 < s["max_per_hexagon"] <= n and s["hexagons"] > 10


def test_notebook_dir_has_no_outputs_left(executed):
    assert not list(Path(NOTEBOOKS).glob("*.html"))
