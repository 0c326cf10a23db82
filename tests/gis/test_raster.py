"""Synthetic elevation and flood-depth COGs: validity, plausible values, registration."""

from __future__ import annotations

import doctest
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
import rasterio
from rasterio.warp import transform as warp_transform
from rio_cogeo.cogeo import cog_validate

import gis.raster
from gis.raster import METRIC_EPSG, Terrain, to_metric, write_rasters
from layers.rasters import ELEVATION, FLOOD_DEPTH
from tests.common import DAI_NOI_LONLAT, HANOI_LONLAT, TRUONG_TIEN_LONLAT

# Bạch Mã peak and the Trường Sơn south-west of A Lưới (EPSG:4326 lon/lat).
BACH_MA_LONLAT = (107.853, 16.195)
MOUNTAINS_LONLAT = (107.42, 16.23)
# The South China Sea off Thuận An, outside the city (EPSG:4326 lon/lat).
SEA_LONLAT = (107.75, 16.62)
RESOLUTION_M = 250.0  # coarse, to keep the tests fast (the default is 100 m)


@pytest.fixture(scope="module")
def written(database_url: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[psycopg.Connection, dict[str, Path], list[tuple]]]:
    """The rasters written once for this module, with their registrations (rolled back)."""
    out = tmp_path_factory.mktemp("rasters")
    with psycopg.connect(database_url) as conn:
        paths = write_rasters(conn, out, seed=46, resolution_m=RESOLUTION_M)
        rows = conn.execute(
            "SELECT id, title, title_vi, path, units, nodata, width, height, source, "
            "GeometryType(bounds), ST_SRID(bounds), ST_Contains(bounds, ST_SetSRID("
            "ST_MakePoint(%s, %s), 4326)) FROM raster_datasets ORDER BY id",
            DAI_NOI_LONLAT).fetchall()
        yield conn, paths, rows
        conn.rollback()


@pytest.fixture()
def rasters(written) -> tuple[dict[str, Path], list[tuple]]:
    return written[1], written[2]


def _sample(path: Path, *lonlat: tuple[float, float]) -> list[float]:
    with rasterio.open(path) as ds:
        xs, ys = warp_transform("EPSG:4326", ds.crs, [p[0] for p in lonlat],
                                [p[1] for p in lonlat])
        return [float(v[0]) for v in ds.sample(list(zip(xs, ys, strict=True)))]


def test_doctests() -> None:
    assert doctest.testmod(gis.raster).failed == 0


def test_files_are_valid_cogs(rasters) -> None:
    paths, _ = rasters
    assert set(paths) == {"elevation", "flood-depth"}
    assert paths["elevation"].name == ELEVATION.filename
    assert paths["flood-depth"].name == FLOOD_DEPTH.filename
    for path in paths.values():
        assert path.is_absolute() and path.exists()
        valid, errors, _ = cog_validate(str(path))
        assert valid, errors
        with rasterio.open(path) as ds:
            assert ds.crs.to_epsg() == METRIC_EPSG
            assert ds.res == (RESOLUTION_M, RESOLUTION_M)
            assert ds.nodata == ELEVATION.nodata == FLOOD_DEPTH.nodata
            assert ds.dtypes == ("float32",)
            assert ds.overviews(1)
        assert path.stat().st_size < 5_000_000


def test_elevation_is_plausible(rasters) -> None:
    paths, _ = rasters
    dai_noi, bach_ma, mountains, sea = _sample(paths["elevation"], DAI_NOI_LONLAT,
                                               BACH_MA_LONLAT, MOUNTAINS_LONLAT, SEA_LONLAT)
    assert 0 <= dai_noi < 10
    assert bach_ma > 1000 and mountains > 500
    assert sea == ELEVATION.nodata
    with rasterio.open(paths["elevation"]) as ds:
        data = ds.read(1, masked=True)
    assert 0 <= data.min() <= 1 and 1200 < data.max() < 2500
    assert 0.1 < (data < 3).mean() < 0.4  # the coastal plain and the lagoon


def test_flood_depth_is_plausible(rasters) -> None:
    paths, _ = rasters
    river, dai_noi, bach_ma = _sample(paths["flood-depth"], TRUONG_TIEN_LONLAT, DAI_NOI_LONLAT,
                                      BACH_MA_LONLAT)
    assert river > 0.5
    assert 0 <= dai_noi < 2
    assert bach_ma == 0
    with rasterio.open(paths["flood-depth"]) as ds:
        data = ds.read(1, masked=True)
    assert data.min() == 0 and 1 < data.max() <= 3.2
    assert 0.05 < (data > 0).mean() < 0.5  # the low plain floods, the mountains do not


def test_registered_in_raster_datasets(rasters) -> None:
    paths, rows = rasters
    by_id = {r[0]: r for r in rows}
    for layer in (ELEVATION, FLOOD_DEPTH):
        (_, title, title_vi, path, units, nodata, width, height, source, gtype, srid,
         covers) = by_id[layer.id]
        assert (title, title_vi, units, nodata) == (layer.title, layer.title_vi, layer.units,
                                                    layer.nodata)
        assert path == str(paths[layer.id]) and Path(path).is_absolute()
        with rasterio.open(path) as ds:
            assert (width, height) == (ds.width, ds.height)
        assert (source, gtype, srid, covers) == ("synthetic", "POLYGON", 4326, True)


def test_write_again_is_an_upsert_and_deterministic(written, tmp_path: Path) -> None:
    conn = written[0]  # (another connection would wait for this one's uncommitted rows)
    with conn.transaction(force_rollback=True):
        first = write_rasters(conn, tmp_path / "a", seed=3, resolution_m=1000)
        again = write_rasters(conn, tmp_path / "b", seed=3, resolution_m=1000)
        other = write_rasters(conn, tmp_path / "c", seed=4, resolution_m=1000)
        rows = conn.execute("SELECT id, path FROM raster_datasets ORDER BY id").fetchall()
    assert rows == [("elevation", str(other["elevation"])),
                    ("flood-depth", str(other["flood-depth"]))]
    for key in first:
        with rasterio.open(first[key]) as a, rasterio.open(again[key]) as b, \
                rasterio.open(other[key]) as c:
            assert np.array_equal(a.read(1), b.read(1))
            if key == "elevation":
                assert not np.array_equal(a.read(1), c.read(1))


def test_terrain_far_from_hue_is_only_a_model() -> None:
    """The field is defined everywhere (the rasters mask it to the city)."""
    x, y = to_metric([HANOI_LONLAT, DAI_NOI_LONLAT]).T
    elev = Terrain().elevation(x, y)
    assert np.isfinite(elev).all()
