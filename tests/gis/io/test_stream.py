"""The chunked writers and ``huegis export`` in constant memory (on the demo's parcels)."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pyogrio
import pytest
import shapely

from gis.io import export_layer
from gis.io.stream import Chunk, CSVWriter, FeatureBatcher, GeoJSONWriter, GpkgWriter
from gis.settings import Settings


@pytest.fixture(scope="module")
def demo(demo_settings: Settings):
    with psycopg.connect(demo_settings.dsn) as conn:
        yield conn
        conn.rollback()


def test_export_reads_and_writes_chunk_by_chunk(demo: psycopg.Connection,
                                                tmp_path: Path) -> None:
    total = demo.execute("SELECT count(*) FROM land_parcels").fetchone()[0]
    seen: list[int] = []
    n = export_layer(demo, "parcels", tmp_path / "p.gpkg", "gpkg", chunk_rows=1500,
                     on_chunk=seen.append)
    assert n == total == pyogrio.read_info(tmp_path / "p.gpkg")["features"]
    assert seen == [min(total, 1500 * (i + 1)) for i in range(-(-total // 1500))]


def _peak(demo: psycopg.Connection, out: Path, chunk_rows: int) -> int:
    tracemalloc.start()
    try:
        export_layer(demo, "parcels", out, "csv", chunk_rows=chunk_rows)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_export_memory_is_bounded_by_the_chunk(demo: psycopg.Connection,
                                               tmp_path: Path) -> None:
    """Peak Python memory follows the chunk size, not the number of parcels (10,000 here):
    whole-layer chunks need several times what 500-row chunks do."""
    small = _peak(demo, tmp_path / "a.csv", 500)
    whole = _peak(demo, tmp_path / "b.csv", 20_000)
    assert small * 4 < whole, (small, whole)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def chunk(n: int = 3) -> Chunk:
    frame = pd.DataFrame({"id": pd.array(range(n), dtype="Int64"),
                          "name": [f"Huế {i}" for i in range(n)],
                          "beds": pd.array([None] + [5] * (n - 1), dtype="Int64")})
    return Chunk(frame, shapely.points(np.full(n, 107.5), np.arange(n) + 16.0))


def test_geojson_writer() -> None:
    w = GeoJSONWriter(9214, id_field="id")
    doc = json.loads(w.start() + w.write(chunk()) + w.write(chunk(1)) + w.finish())
    assert doc["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::9214"
    assert [f["id"] for f in doc["features"]] == [0, 1, 2, 0]
    assert doc["features"][0]["properties"] == {"id": 0, "name": "Huế 0", "beds": None}
    assert doc["features"][2]["geometry"] == {"type": "Point", "coordinates": [107.5, 18.0]}


def test_csv_writer_header_once_and_points() -> None:
    w = CSVWriter(point_columns=True, projected=True)
    text = (w.write(chunk()) + w.write(chunk(2)) + w.finish()).decode()
    lines = text.splitlines()
    assert lines[0] == "id,name,beds,x,y" and len(lines) == 6
    assert lines[1] == "0,Huế 0,,107.5,16.0"


def test_gpkg_writer_appends(tmp_path: Path) -> None:
    w = GpkgWriter(tmp_path / "x.gpkg", "x", 4326, "Point")
    for _ in range(3):
        w.write(chunk())
    w.finish()
    df = pyogrio.read_dataframe(tmp_path / "x.gpkg")
    assert len(df) == 9 and df["beds"].isna().sum() == 3


def test_feature_batcher_keeps_one_schema() -> None:
    b = FeatureBatcher(["a", "b"])
    f = '{"type":"Feature","geometry":null,"properties":{"a":%s,"b":%s,"secret":1}}'
    first = b.chunk([f % (1, '"x"'), f % ("null", '{"k": 1}')])
    later = b.chunk([f % (2, "3")])
    assert str(first.frame["a"].dtype) == str(later.frame["a"].dtype) == "Int64"
    assert first.frame["b"].tolist() == ["x", '{"k": 1}'] and later.frame["b"][0] == "3"
    assert list(first.frame.columns) == ["a", "b"] and first.geometry[0] is None


def test_export_on_an_autocommit_connection(demo_settings: Settings, tmp_path: Path) -> None:
    with psycopg.connect(demo_settings.dsn, autocommit=True) as conn:
        n = export_layer(conn, "health", tmp_path / "h.csv", "csv", chunk_rows=7)
        assert n == conn.execute("SELECT count(*) FROM health_facilities").fetchone()[0] > 7
    assert len(pd.read_csv(tmp_path / "h.csv")) == n
