"""Raster statistics for the planners' queries: values at points, zonal statistics and the
flood depth of parcels, read from the COGs of ``raster_datasets`` with rasterio.

Datasets stay open per process and thread (:func:`open_raster`), so a point query costs a
coordinate transformation and a one-pixel read from GDAL's block cache. The rasters are in
VN-2000 / TM-3 107-00 (EPSG:9214): pixel areas are true square metres.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import shapely

from gis.errors import NotFound
from gis.raster import transformer

DEFAULT_PERCENTILES = (10.0, 25.0, 50.0, 75.0, 90.0)
MAX_ZONE_PIXELS = 20_000_000
MAX_CELLS_PER_FEATURE = 2_500
MAX_CACHED_PIXELS = 16_000_000  # rasters up to 64 MB (float32) are kept in memory

_local = threading.local()


def open_raster(path: str | Path):
    """The rasterio dataset of ``path``, opened once per process and thread (and again when
    the file is replaced, e.g. by ``huegis load demo``)."""
    import rasterio

    cache: dict = getattr(_local, "datasets", None) or {}
    _local.datasets = cache
    key = str(path)
    try:
        stamp = os.stat(key).st_mtime_ns
    except OSError as exc:
        raise NotFound(f"raster file {key} cannot be read: {exc}") from None
    ds, seen = cache.get(key, (None, None))
    if ds is None or ds.closed or seen != stamp:
        try:
            ds = rasterio.open(key)
        except rasterio.errors.RasterioIOError as exc:
            raise NotFound(f"raster file {key} cannot be read: {exc}") from None
        ds.huegis_epsg = ds.crs.to_epsg()  # looked up once: to_epsg() is slow
        ds.huegis_transform = ds.transform  # a new Affine on every ds.transform
        ds.huegis_band = None
        cache[key] = (ds, stamp)
    return ds


def _band(ds) -> np.ndarray | None:
    """The whole band in memory, for rasters up to :data:`MAX_CACHED_PIXELS` (read once)."""
    if ds.huegis_band is None and ds.width * ds.height <= MAX_CACHED_PIXELS:
        ds.huegis_band = ds.read(1)
    return ds.huegis_band


def _to_raster(ds, geom: shapely.Geometry | np.ndarray):
    """Lon/lat geometries in the raster's CRS."""
    t = transformer(4326, ds.huegis_epsg)
    return shapely.transform(geom, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))


def value_at(ds, lon: float, lat: float) -> float | None:
    """The value of the pixel containing lon/lat (None on nodata or off the raster).

    Example
    -------
    With the demo rasters (the tests run this)::

        value_at(open_raster(path), 107.5905, 16.4680)  # flood depth near Trường Tiền
    """
    return _pixel_value(ds, *transformer(4326, ds.huegis_epsg).transform(lon, lat))


def values_at(paths: Sequence[str | Path], lon: float, lat: float) -> list[float | None]:
    """The value at lon/lat of each raster file (see :func:`value_at`), the point
    transformed once per raster CRS (what's-here reads flood depth and elevation, both in
    EPSG:9214, for one transformation).

    Example
    -------
    With the demo rasters (the tests run this)::

        values_at([flood_path, elevation_path], 107.5905, 16.4680)
    """
    datasets = [open_raster(p) for p in paths]
    local = {ds.huegis_epsg: None for ds in datasets}
    for epsg in local:
        local[epsg] = transformer(4326, epsg).transform(lon, lat)
    return [_pixel_value(ds, *local[ds.huegis_epsg]) for ds in datasets]


def _pixel_value(ds, x: float, y: float) -> float | None:
    """The value of the pixel containing ``x``/``y`` (the raster's CRS)."""
    t = ds.huegis_transform
    if not (math.isfinite(x) and math.isfinite(y)):
        return None
    col = math.floor((x - t.c) / t.a) if t.b == 0 else ds.index(x, y)[1]
    row = math.floor((y - t.f) / t.e) if t.d == 0 else ds.index(x, y)[0]
    if not (0 <= row < ds.height and 0 <= col < ds.width):
        return None
    band = _band(ds)
    if band is not None:
        v = float(band[row, col])
    else:
        from rasterio.windows import Window

        v = float(ds.read(1, window=Window(col, row, 1, 1))[0, 0])
    if ds.nodata is not None and v == ds.nodata or not np.isfinite(v):
        return None
    return v


def _window(ds, bounds: tuple[float, float, float, float]):
    """The pixel window (col_off, row_off, width, height) covering ``bounds``, clipped."""
    inv = ~ds.transform
    xs, ys = zip(*(inv @ (x, y) for x, y in ((bounds[0], bounds[3]), (bounds[2], bounds[1]))),
                 strict=True)
    c0 = max(int(np.floor(min(xs))), 0)
    r0 = max(int(np.floor(min(ys))), 0)
    c1 = min(int(np.floor(max(xs))) + 1, ds.width)
    r1 = min(int(np.floor(max(ys))) + 1, ds.height)
    return c0, r0, max(c1 - c0, 0), max(r1 - r0, 0)


def zonal_stats(ds, geom: shapely.Geometry, percentiles: Sequence[float] = DEFAULT_PERCENTILES,
                threshold: float | None = None, all_touched: bool = False) -> dict:
    """Statistics of the pixels whose centre is inside ``geom`` (lon/lat; every pixel it
    touches with ``all_touched``): count, min, max, mean, percentiles, and the area of the
    pixels above ``threshold``. Nodata pixels are left out (``nodata_count``).
    """
    from rasterio.features import geometry_mask
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    local = _to_raster(ds, geom)
    c0, r0, w, h = _window(ds, local.bounds)
    pixel_area = abs(ds.transform.a * ds.transform.e)
    result: dict = {"count": 0, "nodata_count": 0, "min": None, "max": None, "mean": None,
                    "std": None, "sum": None,
                    "percentiles": {f"p{p:g}": None for p in percentiles},
                    "pixel_area_m2": pixel_area, "area_m2": 0.0}
    if threshold is not None:
        result.update(threshold=threshold, count_above=0, area_above_m2=0.0)
    if w == 0 or h == 0:
        return result
    if w * h > MAX_ZONE_PIXELS:
        from gis.errors import InvalidParameter

        raise InvalidParameter(f"the geometry covers more than {MAX_ZONE_PIXELS:,} pixels")
    window = Window(c0, r0, w, h)
    data = ds.read(1, window=window)
    inside = ~geometry_mask([local], (h, w), window_transform(window, ds.transform),
                            all_touched=all_touched)
    valid = inside & np.isfinite(data)
    if ds.nodata is not None:
        valid &= data != ds.nodata
    values = data[valid].astype("float64")
    result["nodata_count"] = int(inside.sum() - valid.sum())
    if values.size == 0:
        return result
    result.update(count=int(values.size), min=float(values.min()), max=float(values.max()),
                  mean=float(values.mean()), std=float(values.std()), sum=float(values.sum()),
                  area_m2=float(values.size * pixel_area))
    result["percentiles"] = {f"p{p:g}": float(v) for p, v in
                             zip(percentiles, np.percentile(values, list(percentiles)),
                                 strict=True)}
    if threshold is not None:
        above = int((values > threshold).sum())
        result.update(count_above=above, area_above_m2=float(above * pixel_area))
    return result


def overlap_stats(ds, geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each lon/lat polygon: the mean of the pixels it overlaps, weighted by the overlap
    area, and the largest of them (NaN where it overlaps only nodata or lies off the raster).

    Vectorised: each polygon is cut by the pixel boxes its bounding box spans (a parcel of
    Huế spans one to four 100 m pixels), the overlaps measured by shapely in EPSG:9214.
    """
    n = len(geoms)
    mean = np.full(n, np.nan)
    peak = np.full(n, np.nan)
    if n == 0:
        return mean, peak
    local = _to_raster(ds, np.asarray(geoms, dtype=object))
    b = shapely.bounds(local)
    a, e = ds.transform.a, ds.transform.e
    x0, y0 = ds.transform.c, ds.transform.f
    col0 = np.floor((b[:, 0] - x0) / a).astype(np.int64)
    col1 = np.floor((b[:, 2] - x0) / a).astype(np.int64)
    row0 = np.floor((b[:, 3] - y0) / e).astype(np.int64)
    row1 = np.floor((b[:, 1] - y0) / e).astype(np.int64)
    ncol = col1 - col0 + 1
    nrow = row1 - row0 + 1
    cells = ncol * nrow
    if cells.max() > MAX_CELLS_PER_FEATURE:
        from gis.errors import InvalidParameter

        raise InvalidParameter("a feature spans too many raster cells for overlap statistics")
    owner = np.repeat(np.arange(n), cells)
    k = np.arange(cells.sum()) - np.repeat(np.cumsum(cells) - cells, cells)
    cols = col0[owner] + k % ncol[owner]
    rows = row0[owner] + k // ncol[owner]
    on = (cols >= 0) & (cols < ds.width) & (rows >= 0) & (rows < ds.height)
    owner, cols, rows = owner[on], cols[on], rows[on]
    if owner.size == 0:
        return mean, peak
    from rasterio.windows import Window

    c_lo, r_lo = int(cols.min()), int(rows.min())
    data = ds.read(1, window=Window(c_lo, r_lo, int(cols.max()) - c_lo + 1,
                                    int(rows.max()) - r_lo + 1))
    vals = data[rows - r_lo, cols - c_lo].astype("float64")
    good = np.isfinite(vals)
    if ds.nodata is not None:
        good &= vals != ds.nodata
    boxes = shapely.box(x0 + cols * a, y0 + (rows + 1) * e, x0 + (cols + 1) * a, y0 + rows * e)
    overlap = shapely.area(shapely.intersection(local[owner], boxes))
    use = good & (overlap > 0)
    weight = np.bincount(owner[use], weights=overlap[use], minlength=n)
    total = np.bincount(owner[use], weights=(overlap * vals)[use], minlength=n)
    has = weight > 0
    mean[has] = total[has] / weight[has]
    peak_vals = np.full(n, -np.inf)
    np.maximum.at(peak_vals, owner[use], vals[use])
    peak[has] = peak_vals[has]
    return mean, peak


def rank_exposure(features: list[dict], land_use: Sequence[str | None], areas: np.ndarray,
                  mean: np.ndarray, peak: np.ndarray) -> tuple[list[dict], dict, list[dict]]:
    """Parcels ranked by mean then max flood depth (deepest first; no data last), with
    ``mean_depth_m``/``max_depth_m`` added to their properties; totals and totals by land use
    (``flooded`` = some overlapped pixel deeper than 0; ``mean_depth_m`` area-weighted).
    """
    n = len(features)
    key_mean = np.where(np.isnan(mean), -np.inf, mean)
    key_peak = np.where(np.isnan(peak), -np.inf, peak)
    order = np.lexsort((np.arange(n), -key_peak, -key_mean)) if n else np.array([], int)
    ranked = []
    for rank, i in enumerate(order, start=1):
        f = features[i]
        props = f.setdefault("properties", {})
        props["mean_depth_m"] = None if np.isnan(mean[i]) else round(float(mean[i]), 4)
        props["max_depth_m"] = None if np.isnan(peak[i]) else round(float(peak[i]), 4)
        props["rank"] = rank
        ranked.append(f)

    def summary(idx: np.ndarray) -> dict:
        known = idx[~np.isnan(mean[idx])]
        wet = known[peak[known] > 0]
        a = areas[known]
        return {"parcels": int(idx.size), "area_m2": float(areas[idx].sum()),
                "flooded_parcels": int(wet.size), "flooded_area_m2": float(areas[wet].sum()),
                "mean_depth_m": (float((mean[known] * a).sum() / a.sum()) if a.sum() > 0
                                 else None),
                "max_depth_m": float(peak[known].max()) if known.size else None}

    everything = summary(np.arange(n))
    uses = np.array([u if u is not None else "" for u in land_use], dtype=object)
    groups = []
    for use in sorted(set(uses.tolist())):
        groups.append({"land_use": use or None, **summary(np.flatnonzero(uses == use))})
    groups.sort(key=lambda g: (-g["flooded_area_m2"], g["land_use"] or ""))
    return ranked, everything, groups
