"""Query inputs and SQL builders of :mod:`gis.features.queries` (no HTTP), and the raster
statistics of :mod:`gis.features.rasterstats` on a small raster written by the test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import psycopg
import pytest
import shapely
from pyproj import Geod

from gis.errors import InvalidGeometry, InvalidParameter
from gis.features import queries as q
from gis.features import rasterstats as rs
from gis.features.request import parse_api_crs
from gis.settings import Settings
from layers import VECTOR_LAYERS
from tests.common import DAI_NOI_LONLAT


def test_parse_geometry_axis_order_and_crs() -> None:
    lat_first = {"type": "Point", "coordinates": [16.469, 107.5775]}
    assert q.parse_geometry(lat_first, parse_api_crs("EPSG:4326")).coords[0] == (107.5775,
                                                                                   16.469)
    tm3 = {"type": "Point", "coordinates": [561_480.0, 1_821_590.0]}
    lon, lat = q.parse_geometry(tm3, parse_api_crs("EPSG:9214")).coords[0]
    assert (round(lon, 2), round(lat, 2)) == (107.58, 16.47)


@pytest.mark.parametrize("bad", [
    None, [], {"type": "Feature"}, {"type": "Polygon", "coordinates": "x"},
    {"type": "Polygon", "coordinates": []},
    {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
    {"type": "Point", "coordinates": [1e300 * 10, 0]},
    {"type": "Point", "coordinates": [500, 0]},
])
def test_parse_geometry_refuses(bad) -> None:
    with pytest.raises(InvalidGeometry):
        q.parse_geometry(bad)


def test_parse_geometry_vertex_cap() -> None:
    ring = [[np.cos(a), np.sin(a)] for a in np.linspace(0, 2 * np.pi, q.MAX_VERTICES + 5)]
    ring[-1] = ring[0]
    with pytest.raises(InvalidGeometry, match="vertices"):
        q.parse_geometry({"type": "Polygon", "coordinates": [ring]})


def test_ranges() -> None:
    assert q.check_k(1) == 1 and q.check_distance(10) == 10.0
    for bad in (0, q.MAX_K + 1):
        with pytest.raises(InvalidParameter):
            q.check_k(bad)
    for bad in (0.0, -1.0, float("inf"), float("nan"), q.MAX_DISTANCE_M + 1):
        with pytest.raises(InvalidParameter):
            q.check_distance(bad)


def test_degree_prefilter_covers_the_distance() -> None:
    """Any point ``d`` metres away (geodesic), in any direction, is within the prefilter."""
    geod = Geod(ellps="WGS84")
    lon, lat = DAI_NOI_LONLAT
    for d in (10.0, 1000.0, 50_000.0):
        az = np.arange(0, 360, 5.0)
        x, y, _ = geod.fwd(np.full(az.size, lon), np.full(az.size, lat), az,
                           np.full(az.size, d))
        assert np.hypot(x - lon, y - lat).max() <= q.degrees_for(d, lat)


def test_sql_uses_parameters_and_hides_private_fields() -> None:
    sql = q.nearest_sql(VECTOR_LAYERS["parcels"], parse_api_crs(None), None)
    assert "owner_name" not in sql and "$3" in sql and "<->" in sql
    from gis.auth import Principal

    planner = q.nearest_sql(VECTOR_LAYERS["parcels"], parse_api_crs(None), Principal("planner"))
    assert "owner_name" in planner
    assert "ST_FlipCoordinates" in q.out_geometry("g", parse_api_crs("EPSG:4326"))
    assert "ST_Transform(g, 9214)" in q.out_geometry("g", parse_api_crs("EPSG:9214"))


def test_knn_is_exact_where_degrees_mislead(conn: psycopg.Connection) -> None:
    """Two points: the nearer in degrees is the farther in metres (a degree of longitude
    is shorter than one of latitude); the query ranks them geodesically."""
    lon, lat = 107.60, 16.20
    conn.execute("DELETE FROM health_facilities")
    conn.execute("INSERT INTO health_facilities (name, kind, geom) VALUES "
                 "('east', 'clinic', ST_Point(%s, %s, 4326)), "
                 "('north', 'clinic', ST_Point(%s, %s, 4326))",
                 (lon + 0.0101, lat, lon, lat + 0.0100))
    sql = q.nearest_sql(VECTOR_LAYERS["health"], parse_api_crs(None), None)
    sql = sql.replace("$1", "%(x)s").replace("$2", "%(y)s").replace("$3", "%(k)s")
    rows = conn.execute(sql, {"x": lon, "y": lat, "k": 1}).fetchall()
    import json

    assert json.loads(rows[0][0])["properties"]["name"] == "east"
    degrees_first = conn.execute(
        "SELECT name FROM health_facilities ORDER BY geom <-> ST_Point(%s, %s, 4326) LIMIT 1",
        (lon, lat)).fetchone()[0]
    assert degrees_first == "north"


# ------------------------------------------------------------------------- raster statistics
@pytest.fixture(scope="module")
def raster(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10 × 10 grid of 100 m pixels in EPSG:9214, value = column + 10 × row, nodata at
    (0, 0)."""
    import rasterio
    from rasterio.transform import Affine

    path = tmp_path_factory.mktemp("r") / "grid.tif"
    data = (np.arange(10)[None, :] + 10 * np.arange(10)[:, None]).astype("float32")
    data[0, 0] = -9999
    with rasterio.open(path, "w", driver="GTiff", width=10, height=10, count=1,
                       dtype="float32", crs="EPSG:9214", nodata=-9999,
                       transform=Affine(100, 0, 560_000, 0, -100, 1_822_000)) as ds:
        ds.write(data, 1)
    return path


def lonlat(geom):
    from gis.raster import transformer

    t = transformer(9214, 4326)
    return shapely.transform(geom, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))


def test_value_and_zonal_stats(raster: Path) -> None:
    ds = rs.open_raster(raster)
    assert rs.open_raster(raster) is ds  # kept open
    lon, lat = lonlat(shapely.Point(560_250, 1_821_650)).coords[0]
    assert rs.value_at(ds, lon, lat) == 32.0
    lon, lat = lonlat(shapely.Point(560_050, 1_821_950)).coords[0]
    assert rs.value_at(ds, lon, lat) is None  # nodata
    assert rs.value_at(ds, 107.0, 16.0) is None  # off the raster
    # Pixel centres of columns 0-2, rows 0-1: values 1, 2, 10, 11, 12 (+ nodata at 0).
    zone = lonlat(shapely.box(560_010, 1_821_810, 560_290, 1_821_990))
    s = rs.zonal_stats(ds, zone, (50,), threshold=10.5)
    assert (s["count"], s["nodata_count"], s["min"], s["max"]) == (5, 1, 1.0, 12.0)
    assert s["mean"] == pytest.approx(36 / 5, abs=1e-9)
    assert s["percentiles"]["p50"] == 10.0
    assert (s["count_above"], s["area_above_m2"]) == (2, pytest.approx(20_000, rel=1e-9))


def test_overlap_stats_weight_by_area(raster: Path) -> None:
    ds = rs.open_raster(raster)
    # 75 % in pixel (row 5, col 4) = 54 and 25 % in (row 5, col 5) = 55.
    half = lonlat(shapely.box(560_425, 1_821_420, 560_525, 1_821_480))
    inside = lonlat(shapely.box(560_710, 1_821_210, 560_790, 1_821_290))  # row 7, col 7
    outside = lonlat(shapely.box(570_000, 1_830_000, 570_010, 1_830_010))
    mean, peak = rs.overlap_stats(ds, np.array([half, inside, outside], dtype=object))
    assert mean[0] == pytest.approx(54.25, abs=0.01) and peak[0] == 55.0
    assert mean[1] == pytest.approx(77.0) and peak[1] == 77.0
    assert np.isnan(mean[2]) and np.isnan(peak[2])


def test_values_at_reads_every_raster_at_once(raster: Path) -> None:
    ds = rs.open_raster(raster)
    for x, y in ((560_250, 1_821_650), (560_050, 1_821_950), (560_999, 1_821_001)):
        lon, lat = lonlat(shapely.Point(x, y)).coords[0]
        assert rs.values_at([raster, raster], lon, lat) == [rs.value_at(ds, lon, lat)] * 2
    lon, lat = lonlat(shapely.Point(560_250, 1_821_650)).coords[0]
    assert rs.values_at([raster], lon, lat) == [32.0]
    assert rs.values_at([raster], 107.0, 16.0) == [None]  # off the raster
    assert rs.values_at([], lon, lat) == []


# --------------------------------------------------------------------------- what's here
def test_whats_here_keeps_one_generic_plan(demo_settings: Settings) -> None:
    """The prepared what's-here statement is planned once, not at every execution: its
    generic plan is chosen (planning it costs more than running it), and that plan still
    reaches every table through its GiST index."""
    sql = q.whats_here_sql(parse_api_crs(None), None)
    with psycopg.connect(demo_settings.dsn) as conn:
        conn.pgconn.exec_(f"PREPARE wh (float8, float8) AS {sql}".encode())
        lon, lat = DAI_NOI_LONLAT
        for i in range(8):
            conn.execute(f"EXECUTE wh ({lon + i * 1e-3}, {lat})").fetchone()
        generic, custom = conn.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE name = 'wh'").fetchone()
        assert generic >= 3 and custom <= 5

        # Even a plan made for one point does not see the point as a constant (a literal
        # would make its estimates, and so its cost, differ from the generic plan's, and
        # PostgreSQL would then plan every execution again).
        conn.execute("SET plan_cache_mode = force_custom_plan")
        custom_plan = "\n".join(r[0] for r in conn.execute(
            f"EXPLAIN EXECUTE wh ({lon}, {lat})").fetchall())
        assert "geom && p.g" in custom_plan and "::geometry)" not in custom_plan, custom_plan
        conn.execute("RESET plan_cache_mode")
        plan = "\n".join(r[0] for r in conn.execute(
            f"EXPLAIN EXECUTE wh ({lon}, {lat})").fetchall())
        assert "Seq Scan on land_parcels" not in plan
        for index in ("ward_pieces_geom", "land_parcels_geom_gist", "construction_geom_gist",
                      "health_facilities_geom_gist", "education_facilities_geom_gist",
                      "tourism_pois_geom_gist"):
            assert f"using {index}" in plan, (index, plan)


def test_doctests() -> None:
    import doctest

    assert doctest.testmod(q).failed == 0
