"""Synthetic terrain of Huế: elevation and design-flood depth, written as Cloud-Optimized GeoTIFFs.

There is no open DEM or flood model to ship, so both rasters are generated from a smooth,
deterministic field built on a hand-drawn sketch of Huế's geography (lon/lat constants below,
traced from the city boundary and OpenStreetMap points): the coastline, the Tam Giang – Cầu Hai
lagoon, the Hương and Bồ rivers, the Trường Sơn mountains to the south-west (Bạch Mã, Hải Vân,
the A Lưới valley) and the small hills around the old capital (Ngự Bình, Vọng Cảnh, Thiên An).

All metric work is done in VN-2000 / TM-3 107-00 (EPSG:9214). The COGs are written in EPSG:9214
too, on a square grid of ``resolution_m`` metres (100 m by default: about 1,250 × 850 pixels,
1–2 MB per file), so pixel sizes and areas are true metres. Pixels outside the city polygon
(the sea, neighbouring provinces, Laos) are nodata.

The same field is used by :mod:`gis.synth` to keep parcels and incidents off water and
mountains, so the generated layers and the rasters agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import psycopg
import shapely
from pyproj import Transformer

from gis.errors import DataMissing
from layers.rasters import ELEVATION, FLOOD_DEPTH

METRIC_EPSG = 9214  # VN-2000 / TM-3 107-00

# ---------------------------------------------------------------- the geography sketch (lon/lat)
# Coastline from the Quảng Trị border (north-west) to the Hải Vân pass (south-east), simplified
# from the city boundary.
COAST = ((107.3907, 16.7446), (107.4968, 16.6603), (107.5846, 16.6015), (107.6972, 16.5369),
         (107.8433, 16.4272), (107.8949, 16.3727), (107.9546, 16.3432), (108.0025, 16.3097),
         (108.0178, 16.3113), (108.0240, 16.3398), (108.0448, 16.3123), (108.0577, 16.2824),
         (108.0984, 16.2292), (108.1145, 16.2205), (108.1941, 16.2099))
# The Hương (Perfume) river from Tuần to the Thuận An mouth: Thiên Mụ, Kim Long, Trường Tiền
# bridge, Vỹ Dạ, Bao Vinh, Sình.
HUONG = ((107.5750, 16.3750), (107.5660, 16.3950), (107.5500, 16.4150), (107.5370, 16.4320),
         (107.5380, 16.4470), (107.5450, 16.4525), (107.5600, 16.4570), (107.5750, 16.4585),
         (107.5850, 16.4615), (107.5905, 16.4637), (107.5965, 16.4685), (107.6010, 16.4760),
         (107.6030, 16.4840), (107.5980, 16.4970), (107.5920, 16.5120), (107.5930, 16.5250),
         (107.6000, 16.5450), (107.6050, 16.5650))
HUONG_HALF_WIDTH_M = 170.0
# The Bồ river, from the Phong Điền foothills to its confluence with the Hương at Sình.
BO = ((107.3600, 16.4200), (107.4100, 16.4800), (107.4450, 16.5250), (107.5000, 16.5400),
      (107.5500, 16.5350), (107.5920, 16.5220))
BO_HALF_WIDTH_M = 90.0
# Lagoons: centre lines with half-widths in metres (Tam Giang, Thủy Tú, Cầu Hai; Lăng Cô).
LAGOONS = (
    (((107.3800, 16.7150), 350), ((107.4300, 16.6750), 650), ((107.5000, 16.6200), 850),
     ((107.5600, 16.5880), 800), ((107.5900, 16.5780), 650), ((107.6250, 16.5480), 600),
     ((107.6550, 16.5250), 900), ((107.7000, 16.5050), 700), ((107.7500, 16.4720), 650),
     ((107.8000, 16.4370), 900), ((107.8400, 16.3950), 2000), ((107.8800, 16.3550), 2500),
     ((107.9200, 16.3250), 2800), ((107.9600, 16.3120), 1300)),
    (((108.0500, 16.2460), 600), ((108.0900, 16.2300), 900)),
)
# Mountain masses: lon, lat, height above the foothill plateau (m), radius (km).
MOUNTAINS = ((107.3000, 16.4500, 700, 14), (107.4200, 16.2300, 800, 13),
             (107.1400, 16.1900, 650, 12), (107.6000, 16.1100, 750, 12),
             (107.8530, 16.1950, 1050, 6), (108.1300, 16.2000, 800, 4.5),
             (107.2000, 16.5600, 450, 10), (107.7500, 16.1000, 500, 8))
# Valleys (floor height in m, floor rising by ``slope`` m per km² from the axis): A Lưới, Nam Đông.
VALLEYS = ((((107.1700, 16.4000), (107.2300, 16.2800), (107.2700, 16.1400)), 560.0, 60.0),
           (((107.6600, 16.1500), (107.7100, 16.1800), (107.7400, 16.2300)), 70.0, 45.0))
# Hills around the old capital: lon, lat, height (m), radius (km).
HILLS = ((107.5835, 16.4415, 100, 0.35), (107.5625, 16.4280, 40, 0.45),
         (107.5500, 16.4150, 70, 0.9), (107.5445, 16.4535, 18, 0.2),
         (107.5350, 16.4300, 45, 0.5), (107.6000, 16.4300, 25, 0.7))
# Where mountains begin, in km inland from the coast, along the coast from north-west (t=0) to
# south-east (t=1): far inland behind Phong Điền, close behind Huế, at the sea by Lăng Cô.
FRONT_T = (0.0, 0.25, 0.40, 0.55, 0.68, 0.80, 0.90, 1.0)
FRONT_KM = (26.0, 23.0, 16.5, 12.0, 7.0, 3.5, 1.5, 0.5)
MOUNTAIN_RAMP_KM = 13.0
PLATEAU_M = 320.0


@lru_cache(maxsize=4)
def transformer(src: int, dst: int) -> Transformer:
    """A cached pyproj transformer (``always_xy``: x = easting/longitude first)."""
    return Transformer.from_crs(src, dst, always_xy=True)


def to_metric(lonlat) -> np.ndarray:
    """Lon/lat pairs (EPSG:4326) → an ``(n, 2)`` array of EPSG:9214 metres.

    Example
    -------
    >>> to_metric([(107.585, 16.463)]).round(-1)  # central Huế
    array([[ 562270., 1820900.]])
    """
    a = np.asarray(lonlat, dtype=float).reshape(-1, 2)
    x, y = transformer(4326, METRIC_EPSG).transform(a[:, 0], a[:, 1])
    return np.column_stack([x, y])


def polyline_distance(x: np.ndarray, y: np.ndarray, line: np.ndarray,
                      values: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray,
                                                                 np.ndarray]:
    """Distance from points to a polyline, vectorised over points.

    Returns ``(distance, t, value)``: the distance, the relative position ``t`` (0–1) of the
    nearest point along the line, and ``values`` (one per vertex) interpolated there.
    """
    line = np.asarray(line, dtype=float)
    seg = np.diff(line, axis=0)
    seglen = np.hypot(seg[:, 0], seg[:, 1])
    cum = np.concatenate([[0.0], np.cumsum(seglen)])
    vals = np.zeros(len(line)) if values is None else np.asarray(values, dtype=float)
    best = np.full(x.shape, np.inf)
    along = np.zeros(x.shape)
    value = np.zeros(x.shape)
    for i in range(len(seg)):
        ax, ay = line[i]
        dx, dy = seg[i]
        u = np.clip(((x - ax) * dx + (y - ay) * dy) / (seglen[i] ** 2), 0.0, 1.0)
        d = np.hypot(x - (ax + u * dx), y - (ay + u * dy))
        closer = d < best
        best = np.where(closer, d, best)
        along = np.where(closer, cum[i] + u * seglen[i], along)
        value = np.where(closer, vals[i] + u * (vals[i + 1] - vals[i]), value)
    return best, along / cum[-1], value


def _smoothstep(e0, e1, v):
    t = np.clip((v - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@dataclass(frozen=True)
class Terrain:
    """The synthetic terrain model in EPSG:9214; every method is vectorised over points."""

    seed: int = 46

    @property
    def geography(self) -> dict:
        """The geography sketch in EPSG:9214 (coast, rivers, lagoons, mountains…)."""
        return _geography()

    def _noise(self, x, y, scale_m: tuple[float, float], n: int, salt: int) -> np.ndarray:
        """Band-limited noise in about [-1, 1]: a sum of ``n`` random plane waves."""
        rng = np.random.default_rng([self.seed, salt])
        out = np.zeros(x.shape)
        lam = np.exp(rng.uniform(np.log(scale_m[0]), np.log(scale_m[1]), n))
        theta = rng.uniform(0, np.pi, n)
        phase = rng.uniform(0, 2 * np.pi, n)
        amp = (lam / lam.max()) ** 0.7
        for k in range(n):
            kx, ky = np.cos(theta[k]) * 2 * np.pi / lam[k], np.sin(theta[k]) * 2 * np.pi / lam[k]
            out += amp[k] * np.sin(kx * (x - 5.9e5) + ky * (y - 1.82e6) + phase[k])
        return out / np.sqrt((amp ** 2).sum() / 2) / 2.2

    def water(self, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        """Distances in metres: ``coast`` (inland), ``coast_t`` (0–1 along the coast),
        ``river`` (to the Hương/Bồ banks, negative in the channel) and ``lagoon`` (to the shore,
        negative on the water)."""
        g = self.geography
        coast, coast_t, _ = polyline_distance(x, y, g["coast"])
        d_h, _, _ = polyline_distance(x, y, g["huong"])
        d_b, _, _ = polyline_distance(x, y, g["bo"])
        river = np.minimum(d_h - HUONG_HALF_WIDTH_M, d_b - BO_HALF_WIDTH_M)
        lagoon = np.full(x.shape, np.inf)
        for line, hw in g["lagoons"]:
            d, _, w = polyline_distance(x, y, line, hw)
            lagoon = np.minimum(lagoon, d - w)
        return {"coast": coast, "coast_t": coast_t, "river": river, "lagoon": lagoon}

    def elevation(self, x: np.ndarray, y: np.ndarray,
                  water: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Ground elevation in metres above mean sea level at EPSG:9214 points.

        Example
        -------
        >>> t = Terrain()
        >>> p = to_metric([(107.5775, 16.4690), (107.853, 16.195)])  # Đại Nội, Bạch Mã
        >>> low, high = t.elevation(p[:, 0], p[:, 1])
        >>> bool(low < 8 and high > 1000)
        True
        """
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        g = self.geography
        w = water if water is not None else self.water(x, y)
        d_km = w["coast"] / 1000.0
        # Coastal plain: sand dunes behind the beach, then a gentle rise inland.
        plain = 0.7 + 0.24 * d_km + 4.5 * np.exp(-((d_km - 0.5) / 0.6) ** 2)
        plain += 0.4 * self._noise(x, y, (1500.0, 9000.0), 10, 1)
        # Mountains: a plateau with peaks, rising behind a front that nears the sea southward.
        front = np.interp(w["coast_t"], FRONT_T, FRONT_KM)
        ramp = _smoothstep(front, front + MOUNTAIN_RAMP_KM, d_km)
        mass = np.full(x.shape, PLATEAU_M)
        for mx, my, h, r in g["mountains"]:
            mass += h * np.exp(-((x - mx) ** 2 + (y - my) ** 2) / (2 * (r * 1000.0) ** 2))
        rough = self._noise(x, y, (1500.0, 25000.0), 14, 2)
        mass *= 1.0 + 0.35 * rough
        elev = plain + ramp * mass
        # Small hills around the capital.
        for hx, hy, h, r in g["hills"]:
            elev += h * np.exp(-((x - hx) ** 2 + (y - hy) ** 2) / (2 * (r * 1000.0) ** 2))
        # Valleys carved into the mountains.
        for line, floor, slope in g["valleys"]:
            dv, _, _ = polyline_distance(x, y, line)
            elev = np.minimum(elev, floor + slope * (dv / 1000.0) ** 2 + 15 * rough)
        # River valleys: a bed rising upstream, with walls.
        bed = 0.3 + 0.12 * d_km
        for key in ("river",):
            dr = np.maximum(w[key], 0.0) / 1000.0
            elev = np.minimum(elev, bed + 1.2 + 28.0 * dr ** 1.6 + 0.3 * rough)
        elev = np.where(w["river"] < 0, np.minimum(elev, bed), elev)
        # Lagoon shores slope to the water; the water surface is at about 0 m.
        lag = np.maximum(w["lagoon"], 0.0) / 1000.0
        elev = np.minimum(elev, 0.2 + 1.6 * lag ** 0.7 + 40 * lag ** 2)
        elev = np.where(w["lagoon"] < 0, 0.0, elev)
        return np.maximum(elev, 0.0)

    def flood_depth(self, x: np.ndarray, y: np.ndarray, elevation: np.ndarray | None = None,
                    water: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Design-flood depth in metres (0 on dry ground) at EPSG:9214 points.

        The flood surface slopes down from the Hương valley to the lagoon and is raised along
        the rivers and lagoon shores; depth is that surface minus the ground, capped at 3.2 m.

        Example
        -------
        >>> t = Terrain()
        >>> p = to_metric([(107.5905, 16.4680), (107.853, 16.195)])  # Trường Tiền, Bạch Mã
        >>> wet, dry = t.flood_depth(p[:, 0], p[:, 1])
        >>> bool(wet > 0.3 and dry == 0)
        True
        """
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        w = water if water is not None else self.water(x, y)
        elev = elevation if elevation is not None else self.elevation(x, y, w)
        d_km = np.minimum(w["coast"] / 1000.0, 25.0)
        stage = (1.9 + 0.15 * d_km
                 + 1.3 * np.exp(-np.maximum(w["river"], 0.0) / 1800.0)
                 + 0.5 * np.exp(-np.maximum(w["lagoon"], 0.0) / 1200.0)
                 + 0.25 * self._noise(x, y, (2000.0, 12000.0), 8, 3))
        depth = np.clip(stage - elev, 0.0, 3.2)
        return np.where(depth < 0.02, 0.0, depth)


@lru_cache(maxsize=1)
def _geography() -> dict:
    """The sketch above, in EPSG:9214 metres."""
    return {
        "coast": to_metric(COAST), "huong": to_metric(HUONG), "bo": to_metric(BO),
        "lagoons": [(to_metric([p for p, _ in lag]), np.array([w for _, w in lag], float))
                    for lag in LAGOONS],
        "mountains": [(*to_metric([(lon, lat)])[0], h, r) for lon, lat, h, r in MOUNTAINS],
        "hills": [(*to_metric([(lon, lat)])[0], h, r) for lon, lat, h, r in HILLS],
        "valleys": [(to_metric(line), floor, slope) for line, floor, slope in VALLEYS],
    }


# ---------------------------------------------------------------------------- the COG files


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid in EPSG:9214 (``transform`` maps pixel → metres)."""

    x0: float
    y1: float
    resolution: float
    width: int
    height: int

    @property
    def transform(self):
        from rasterio.transform import Affine

        return Affine(self.resolution, 0.0, self.x0, 0.0, -self.resolution, self.y1)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y1 - self.height * self.resolution,
                self.x0 + self.width * self.resolution, self.y1)

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates, each of shape ``(height, width)``."""
        xs = self.x0 + (np.arange(self.width) + 0.5) * self.resolution
        ys = self.y1 - (np.arange(self.height) + 0.5) * self.resolution
        return np.meshgrid(xs, ys)

    @classmethod
    def covering(cls, bounds: tuple[float, float, float, float], resolution: float) -> Grid:
        """The grid of ``resolution`` metres, snapped to its multiples, covering ``bounds``."""
        x0 = np.floor(bounds[0] / resolution) * resolution
        y0 = np.floor(bounds[1] / resolution) * resolution
        x1 = np.ceil(bounds[2] / resolution) * resolution
        y1 = np.ceil(bounds[3] / resolution) * resolution
        return cls(float(x0), float(y1), float(resolution), int(round((x1 - x0) / resolution)),
                   int(round((y1 - y0) / resolution)))


def city_polygon(conn: psycopg.Connection) -> shapely.Geometry:
    """The city outline (``admin_units`` level ``city``) in EPSG:4326."""
    row = conn.execute("SELECT ST_AsBinary(geom) FROM admin_units WHERE level = 'city' "
                       "ORDER BY id LIMIT 1").fetchone()
    if row is None:
        raise DataMissing("no city boundary in admin_units: load the real data first")
    return shapely.from_wkb(bytes(row[0]))


def metric_geometry(geom, src: int = 4326) -> shapely.Geometry:
    """A geometry (or array of them) from ``src`` to EPSG:9214."""
    t = transformer(src, METRIC_EPSG)
    return shapely.transform(geom, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))


def _write_cog(path: Path, data: np.ndarray, grid: Grid, nodata: float, description: str,
               units: str) -> None:
    """Write one float32 band as a deflate-compressed COG (GDAL's COG driver: 256 px tiles,
    averaged overviews), atomically: a temporary file renamed over ``path``."""
    import rasterio
    from rasterio.crs import CRS

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with rasterio.open(tmp, "w", driver="COG", dtype="float32", count=1, width=grid.width,
                           height=grid.height, crs=CRS.from_epsg(METRIC_EPSG),
                           transform=grid.transform, nodata=nodata, compress="DEFLATE",
                           predictor=3, blocksize=256, overview_resampling="average") as ds:
            ds.write(data.astype("float32"), 1)
            ds.set_band_description(1, description)
            ds.update_tags(1, units=units)
            ds.update_tags(source="synthetic", generator="huegis gis.raster")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_rasters(conn: psycopg.Connection, raster_dir: Path, seed: int = 46,
                  resolution_m: float = 100.0) -> dict[str, Path]:
    """Generate the elevation and flood-depth COGs and register them in ``raster_datasets``.

    Both rasters cover the city polygon (``admin_units`` level ``city``) on the same grid of
    ``resolution_m`` metres in EPSG:9214, float32, nodata outside the city (the catalog's
    nodata, -9999). Rows are upserted by catalog id with ``source = 'synthetic'``, the absolute
    path, size and the EPSG:4326 bounding box. The connection is not committed.

    Parameters
    ----------
    conn : psycopg.Connection
        An open connection; the city boundary must be loaded.
    raster_dir : Path
        Directory for the files (created if needed); file names come from ``layers.rasters``.
    seed : int
        Seed of the terrain's small-scale noise (same seed, same rasters).
    resolution_m : float
        Pixel size in metres (100 m gives about 1,250 × 850 pixels, 1–2 MB per file).

    Returns
    -------
    dict[str, Path]
        Catalog id (``'elevation'``, ``'flood-depth'``) → absolute path of the COG.
    """
    from rasterio.features import geometry_mask
    from rasterio.warp import transform_bounds

    raster_dir = Path(raster_dir).resolve()
    raster_dir.mkdir(parents=True, exist_ok=True)
    city = metric_geometry(city_polygon(conn))
    grid = Grid.covering(city.bounds, resolution_m)
    outside = geometry_mask([city], (grid.height, grid.width), grid.transform, all_touched=True)
    x, y = grid.centres()
    xi, yi = x[~outside], y[~outside]
    terrain = Terrain(seed)
    water = terrain.water(xi, yi)
    elev = terrain.elevation(xi, yi, water)
    depth = terrain.flood_depth(xi, yi, elev, water)
    west, south, east, north = transform_bounds(f"EPSG:{METRIC_EPSG}", "EPSG:4326",
                                                *grid.bounds, densify_pts=21)
    bounds_wkt = shapely.box(west, south, east, north).wkt
    paths: dict[str, Path] = {}
    for layer, values, decimals in ((ELEVATION, elev, 1), (FLOOD_DEPTH, depth, 2)):
        data = np.full((grid.height, grid.width), layer.nodata, dtype="float32")
        data[~outside] = np.round(values, decimals)
        path = raster_dir / layer.filename
        _write_cog(path, data, grid, layer.nodata, layer.title, layer.units)
        conn.execute(
            "INSERT INTO raster_datasets (id, title, title_vi, path, units, nodata, width, "
            "height, source, bounds) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'synthetic', "
            "ST_GeomFromText(%s, 4326)) "
            "ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, "
            "title_vi = EXCLUDED.title_vi, path = EXCLUDED.path, units = EXCLUDED.units, "
            "nodata = EXCLUDED.nodata, width = EXCLUDED.width, height = EXCLUDED.height, "
            "source = EXCLUDED.source, bounds = EXCLUDED.bounds",
            (layer.id, layer.title, layer.title_vi, str(path), layer.units, layer.nodata,
             grid.width, grid.height, bounds_wkt))
        paths[layer.id] = path
    return paths
