"""Deterministic synthetic data for the layers that have no open source.

Land parcels, construction permits and violations, and citizen incident reports (with their
event history) are generated from a seed (``numpy.random.Generator``) and written with
PostgreSQL COPY (:func:`gis.bulk.copy_rows`), every row marked ``source = 'synthetic'``. Wards
must be loaded first: ward polygons are read from ``admin_units``.

* **Parcels** tile the urban wards (*phường*) with a street grid in EPSG:9214: 400 m superblocks
  between arterial roads, subdivided into blocks by local streets and into parcels (narrow deep
  tube-house lots in the centre, larger garden, institutional and farm lots outward). Cells fill
  outward from central Huế (107.585, 16.463), so any ``n`` works; once the urban wards are full
  the communes (*xã*) get rural parcels. Water (Hương and Bồ rivers, the lagoon) and mountains
  (the :class:`gis.raster.Terrain` model) stay empty, and every parcel lies inside its ward.
* **Construction** footprints are buildings inset into existing parcels (or into generated lots
  when there are too few parcels).
* **Incidents** are points inside wards weighted by population, 2019-01-01 to 2026-11-25, with a
  seasonal category mix, working-day SLAs and a consistent ``incident_events`` history.

Personal fields (owner and reporter names, phones, emails, inspector notes) are synthetic;
keeping them private is the job of the catalog (``Field.public``), not of this module.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import psycopg
import shapely
from psycopg import sql

from gis.bulk import ProgressFn, copy_rows
from gis.raster import METRIC_EPSG, Grid, Terrain, metric_geometry, to_metric, transformer
from layers.incidents import INCIDENT_CATEGORIES
from layers.parcels import LAND_USE

__all__ = ["ProgressFn", "delete_synthetic", "generate_construction", "generate_incidents",
           "generate_parcels"]

SOURCE = "synthetic"
# Central Huế (EPSG:4326): the parcel grid fills outward from here.
CENTRE_LONLAT = (107.585, 16.463)
# The Imperial City (Hoàng Thành) and the Citadel (Kinh thành) protection zones.
IMPERIAL_CITY_LONLAT = (107.5781, 16.4690)
IMPERIAL_CITY_HALF_M = 300.0
CITADEL_LONLAT = (107.5775, 16.4705)
CITADEL_RADIUS_M = 1100.0
# The street grid is turned 45°, like the Citadel's.
GRID_ANGLE = math.radians(45.0)
CELL_M = 400.0  # superblock between arterial roads
JITTER_DEG = 4.0  # standard deviation of the turn of outer cells
SITE_RESOLUTION_M = 200.0
HILL_M = 12.0  # above this, only cemeteries and perennial crops
MAX_ELEVATION_M = 60.0  # above this, no parcels
LU_CODES = tuple(LAND_USE)
LU = {c: i for i, c in enumerate(LU_CODES)}

# Incidents run from START to END (local time, UTC+07:00, no daylight saving).
INCIDENTS_START = np.datetime64("2019-01-01T00:00:00")
INCIDENTS_END = np.datetime64("2026-11-25T12:00:00")

# ----------------------------------------------------------------------------- vocabulary
SURNAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Võ", "Đặng", "Bùi",
            "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Trương", "Nguyễn Phước", "Tôn")
SURNAME_WEIGHTS = (30, 10, 9, 4, 4, 2, 5, 6, 2, 1.5, 1.2, 4, 2.5, 1.5, 0.6, 2.5, 1.2, 1.5)
MALE_MIDDLE = ("Văn", "Văn", "Hữu", "Đức", "Minh", "Quang", "Công", "Xuân", "Thanh", "Ngọc",
               "Anh", "Đình", "Quốc")
FEMALE_MIDDLE = ("Thị", "Thị", "Thị", "Ngọc", "Thu", "Thanh", "Kim", "Phương", "Bảo", "Diệu",
                 "Hoài", "Thị Minh")
MALE_GIVEN = ("An", "Bảo", "Bình", "Cường", "Dũng", "Duy", "Đạt", "Hải", "Hậu", "Hiếu", "Hòa",
              "Hoàng", "Hùng", "Huy", "Khánh", "Khoa", "Lâm", "Long", "Lộc", "Minh", "Nam",
              "Nghĩa", "Nhân", "Phong", "Phúc", "Phước", "Quân", "Quang", "Sơn", "Tài", "Tâm",
              "Thắng", "Thành", "Thiện", "Thịnh", "Tiến", "Toàn", "Trí", "Trung", "Tuấn", "Tùng",
              "Việt", "Vinh", "Vũ")
FEMALE_GIVEN = ("Anh", "Châu", "Chi", "Diễm", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hiền",
                "Hoa", "Hồng", "Hương", "Huyền", "Lan", "Liên", "Linh", "Loan", "Mai", "My", "Nga",
                "Ngân", "Nhung", "Nhi", "Oanh", "Phương", "Quỳnh", "Thảo", "Thu", "Thủy", "Trang",
                "Trâm", "Tuyết", "Uyên", "Vân", "Vy", "Xuân", "Yến")
STREETS = (
    "Lê Lợi", "Hùng Vương", "Trần Hưng Đạo", "Lê Duẩn", "Đinh Tiên Hoàng", "Mai Thúc Loan",
    "Nguyễn Trãi", "Điện Biên Phủ", "Phan Đình Phùng", "Bà Triệu", "Nguyễn Huệ", "Hà Nội",
    "Đống Đa", "Lý Thường Kiệt", "Bến Nghé", "Ngô Quyền", "Nguyễn Thái Học", "Chu Văn An",
    "Võ Thị Sáu", "Phạm Ngũ Lão", "Đội Cung", "Trần Cao Vân", "Nguyễn Tri Phương",
    "Nguyễn Công Trứ", "Hai Bà Trưng", "Lê Quý Đôn", "Nguyễn Lương Bằng", "Tố Hữu",
    "Võ Văn Kiệt", "Nguyễn Sinh Cung", "Phạm Văn Đồng", "Trường Chinh", "Bùi Thị Xuân",
    "Kim Long", "Nguyễn Phúc Nguyên", "Lê Ngô Cát", "Huyền Trân Công Chúa", "Minh Mạng",
    "Ngự Bình", "An Dương Vương", "Dương Văn An", "Hoàng Quốc Việt", "Nguyễn Lộ Trạch",
    "Hải Triều", "Ngô Đức Kế", "Chi Lăng", "Huỳnh Thúc Kháng", "Nguyễn Chí Thanh", "Đào Duy Từ",
    "Đặng Thái Thân", "Đoàn Thị Điểm", "Lê Huân", "Ông Ích Khiêm", "Thạch Hãn", "Nhật Lệ",
    "Tăng Bạt Hổ", "Xuân 68", "Lý Nam Đế", "Nguyễn Văn Linh", "Nguyễn Hoàng", "Lê Văn Hưu",
    "Phan Bội Châu", "Phan Chu Trinh", "Trần Phú", "Hàm Nghi", "Duy Tân", "Tôn Đức Thắng",
    "Trần Quang Khải", "Lê Thánh Tôn", "Đặng Dung", "Yết Kiêu", "Nguyễn Khoa Chiêm",
    "Hồ Đắc Di", "Nguyễn Khánh Toàn", "Tự Đức", "Thiên Thai", "Hoài Thanh", "Văn Cao",
    "Phùng Hưng", "Trần Văn Kỷ", "Tô Hiến Thành", "Cao Bá Quát", "Nguyễn Du",
    "Nguyễn Đình Chiểu", "Lê Lai", "Trương Định", "Ngô Thời Nhậm", "Bạch Đằng",
    "Nguyễn Chí Diểu", "Hồ Xuân Hương", "Thái Phiên", "Trần Nguyên Hãn", "Lương Ngọc Quyến",
    "Nguyễn Văn Cừ", "Lâm Hoằng", "Hoàng Thị Loan", "Phạm Thị Liên", "Tùng Thiện Vương",
    "Nguyễn Khoa Văn", "Lê Minh", "Trần Thúc Nhẫn", "Nguyễn Hữu Thọ", "Vạn Xuân",
)
PLACES = ("Hương Giang", "Ngự Bình", "Phú Xuân", "Thuận Hóa", "Kim Long", "Vỹ Dạ", "Cố Đô",
          "Thần Kinh", "Bến Ngự", "Đông Ba", "Gia Hội", "An Cựu", "Thiên Mụ", "Hải Vân",
          "Bạch Mã", "Tam Giang", "Lăng Cô", "Thuận An", "Trường Tiền", "Sông Hương")
SECTORS = ("Thương mại", "Du lịch", "Xây dựng", "Đầu tư", "Dịch vụ", "Khách sạn", "Vận tải",
           "Sản xuất", "Bất động sản", "Thực phẩm")
PAGODAS = ("Từ Đàm", "Báo Quốc", "Diệu Đế", "Từ Hiếu", "Quốc Ân", "Huyền Không", "Linh Quang",
           "Trúc Lâm", "Thuyền Tôn", "Tường Vân", "Kim Tiên", "Từ Quang", "Vạn Phước", "Hồng Ân")
PARISHES = ("Phủ Cam", "Kim Long", "Thợ Đúc", "Bến Ngự", "Dương Sơn", "Nước Ngọt", "Thuận An")


def _ascii(text: str) -> str:
    """Vietnamese text without diacritics, lower case (for e-mail addresses)."""
    t = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in t if not unicodedata.combining(c)).lower()


@lru_cache(maxsize=1)
def _name_pool() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every full name: (names, ASCII stems for e-mails, is_female, surname weight)."""
    names, stems, female, weight = [], [], [], []
    for fem, middles, givens in ((False, MALE_MIDDLE, MALE_GIVEN),
                                 (True, FEMALE_MIDDLE, FEMALE_GIVEN)):
        for surname, w in zip(SURNAMES, SURNAME_WEIGHTS, strict=True):
            if surname == "Tôn":  # descendants of the Nguyễn lords: Tôn Thất / Tôn Nữ
                surname = "Tôn Nữ" if fem else "Tôn Thất"
            for m in middles:
                for g in givens:
                    full = f"{surname} {m} {g}"
                    names.append(full)
                    stems.append(_ascii(full).replace(" ", ""))
                    female.append(fem)
                    weight.append(w)
    return (np.array(names, dtype=object), np.array(stems, dtype=object), np.array(female),
            np.array(weight, float))


def _people(rng: np.random.Generator, n: int, female: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` synthetic people: (full names, ASCII stems, is_female)."""
    names, stems, is_female, weight = _name_pool()
    if female is None:
        female = rng.random(n) < 0.5
    out = np.empty(n, dtype=np.int64)
    for g in (False, True):
        sel = np.flatnonzero(female == g)
        cand = np.flatnonzero(is_female == g)
        p = weight[cand] / weight[cand].sum()
        out[sel] = cand[rng.choice(len(cand), size=len(sel), p=p)]
    return names[out], stems[out], female


# ------------------------------------------------------------------------------ context
@dataclass
class _Wards:
    codes: list[str]
    names: list[str]
    short_names: list[str]
    urban: np.ndarray  # bool: phường
    population: np.ndarray
    geom: np.ndarray  # EPSG:4326, prepared
    metric: np.ndarray  # EPSG:9214


def _load_wards(conn: psycopg.Connection) -> _Wards:
    rows = conn.execute(
        "SELECT gso_code, name, coalesce(short_name, name), unit_type, coalesce(population, 0), "
        "ST_AsBinary(geom) FROM wards ORDER BY gso_code").fetchall()
    if not rows:
        raise ValueError("no wards in admin_units: load the real data first (huegis load demo)")
    geom = shapely.from_wkb([bytes(r[5]) for r in rows])
    shapely.prepare(geom)
    return _Wards(codes=[r[0] for r in rows], names=[r[1] for r in rows],
                  short_names=[r[2] for r in rows],
                  urban=np.array([r[3] == "Phường" for r in rows]),
                  population=np.array([r[4] for r in rows], float), geom=geom,
                  metric=metric_geometry(geom))


@dataclass
class _Site:
    """A coarse grid over the city: ward index, elevation and buildability per pixel."""

    grid: Grid
    ward: np.ndarray  # int16, -1 outside every ward
    elev: np.ndarray
    ok: np.ndarray  # land inside a ward, not water, below MAX_ELEVATION_M
    near_water: np.ndarray  # water within 600 m: check exactly
    weight: np.ndarray  # where people live (incident sampling)

    def index(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Flat pixel index of EPSG:9214 points, -1 outside the grid."""
        g = self.grid
        col = np.floor((x - g.x0) / g.resolution).astype(np.int64)
        row = np.floor((g.y1 - y) / g.resolution).astype(np.int64)
        inside = (col >= 0) & (col < g.width) & (row >= 0) & (row < g.height)
        return np.where(inside, row * g.width + col, -1)


@dataclass
class _Context:
    wards: _Wards
    terrain: Terrain
    site: _Site
    centre: np.ndarray  # EPSG:9214
    coast_dir: np.ndarray  # unit vector along the coast
    extras: dict = field(default_factory=dict)


def _context(conn: psycopg.Connection, seed: int) -> _Context:
    from rasterio.features import rasterize

    wards = _load_wards(conn)
    key = (seed, tuple(wards.codes), tuple(shapely.to_wkb(wards.geom).tolist()))
    cached = _CONTEXTS.get(key)
    if cached is not None:
        return cached
    terrain = Terrain(seed)
    allw = shapely.union_all(wards.metric)
    grid = Grid.covering(allw.bounds, SITE_RESOLUTION_M)
    ward = rasterize([(g, i) for i, g in enumerate(wards.metric)],
                     out_shape=(grid.height, grid.width), transform=grid.transform, fill=-1,
                     dtype="int16").ravel()
    x, y = (a.ravel() for a in grid.centres())
    water = terrain.water(x, y)
    elev = terrain.elevation(x, y, water)
    on_land = (water["river"] > 0) & (water["lagoon"] > 0)
    ok = (ward >= 0) & on_land & (elev < MAX_ELEVATION_M)
    near_water = (water["river"] < 600) | (water["lagoon"] < 600)
    centre = to_metric([CENTRE_LONLAT])[0]
    r_km = np.hypot(x - centre[0], y - centre[1]) / 1000.0
    weight = np.where((ward >= 0) & on_land,
                      np.exp(-elev / 25.0) * (1.0 + 6.0 * np.exp(-r_km / 4.0)), 0.0)
    coast = terrain.geography["coast"]
    d = coast[-1] - coast[0]
    site = _Site(grid, ward, elev.astype("float32"), ok, near_water, weight)
    ctx = _Context(wards, terrain, site, centre, d / np.hypot(*d))
    _CONTEXTS.clear()
    _CONTEXTS[key] = ctx
    return ctx


_CONTEXTS: dict[tuple, _Context] = {}


def _to_lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return transformer(METRIC_EPSG, 4326).transform(x, y)


def _hash(*parts: np.ndarray) -> np.ndarray:
    """A deterministic 64-bit integer mix of integer arrays (splitmix64 steps)."""
    h = np.full(np.broadcast(*parts).shape, 0x9E3779B97F4A7C15, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for p in parts:
            h ^= np.asarray(p).astype(np.uint64)
            h *= np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(31)
            h *= np.uint64(0x94D049BB133111EB)
            h ^= h >> np.uint64(29)
    return h


def _local_text(t: np.ndarray) -> list:
    """Local (UTC+07:00) seconds since 1970-01-01 → ISO 8601 text with ``+07``; NaN → None."""
    t = np.asarray(t, dtype=float)
    valid = np.isfinite(t)
    loc = np.where(valid, t, 0).astype("int64").astype("datetime64[s]")
    text = np.char.add(np.datetime_as_string(loc, unit="s"), "+07").astype(object)
    text[~valid] = None
    return text.tolist()


def delete_synthetic(conn: psycopg.Connection) -> None:
    """Delete the synthetic parcels, construction records and incidents (with their events).

    Rows from other sources are untouched; raster registrations are replaced by
    :func:`gis.raster.write_rasters` instead. The connection is not committed.
    """
    for table in ("incidents", "construction", "land_parcels"):
        conn.execute(sql.SQL("DELETE FROM {} WHERE source = %s").format(sql.Identifier(table)),
                     (SOURCE,))


# ------------------------------------------------------------------------------- parcels
RES, GARDEN, INST, AGRI, HILL, EMPTY = range(6)
PARCEL_COLUMNS = ("parcel_no", "map_sheet_no", "land_use", "area_m2", "zoning", "owner_type",
                  "owner_name", "ward_code", "address", "source", "geom")
# Institutional blocks: land use and probability, in wards (phường) and communes (xã).
INST_URBAN = (("DGD", .24), ("DYT", .08), ("TON", .17), ("DVH", .11), ("DKV", .14),
              ("SKC", .08), ("TMD", .15), ("DGT", .03))
INST_RURAL = (("DGD", .28), ("DYT", .10), ("TON", .20), ("DVH", .14), ("DKV", .05),
              ("SKC", .10), ("NTD", .13))
SHEET_M = {True: 500.0, False: 1000.0}  # cadastral map sheet: 1:1000 in wards, 1:2000 outside


def _rotate(u: np.ndarray, v: np.ndarray, c: np.ndarray | float, s: np.ndarray | float):
    return u * c - v * s, u * s + v * c


def _grid_to_metric(ctx: _Context, u: np.ndarray, v: np.ndarray):
    """Street-grid frame (turned by GRID_ANGLE around the centre) → EPSG:9214."""
    x, y = _rotate(u, v, math.cos(GRID_ANGLE), math.sin(GRID_ANGLE))
    return x + ctx.centre[0], y + ctx.centre[1]


def _metric_to_grid(ctx: _Context, x: np.ndarray, y: np.ndarray):
    return _rotate(x - ctx.centre[0], y - ctx.centre[1], math.cos(GRID_ANGLE),
                   -math.sin(GRID_ANGLE))


@dataclass
class _Cells:
    """Superblock cells of the street grid, in the order they are built up."""

    i: np.ndarray
    j: np.ndarray
    r_km: np.ndarray
    urban: np.ndarray  # phase of each entry (urban wards first, then communes)


def _cells(ctx: _Context, seed: int) -> _Cells:
    cached = ctx.extras.get(("cells", seed))
    if cached is not None:
        return cached
    g = ctx.site.grid
    x0, y0, x1, y1 = g.bounds
    cu, cv = _metric_to_grid(ctx, np.array([x0, x0, x1, x1]), np.array([y0, y1, y0, y1]))
    ii, jj = np.meshgrid(np.arange(math.floor(cu.min() / CELL_M), math.ceil(cu.max() / CELL_M)),
                         np.arange(math.floor(cv.min() / CELL_M), math.ceil(cv.max() / CELL_M)))
    ii, jj = ii.ravel(), jj.ravel()
    off = np.array([-1.0, 0.0, 1.0]) * CELL_M / 3
    ou, ov = (a.ravel() for a in np.meshgrid(off, off))
    su = ii[:, None] * CELL_M + ou[None, :]
    sv = jj[:, None] * CELL_M + ov[None, :]
    sx, sy = _grid_to_metric(ctx, su, sv)
    idx = ctx.site.index(sx.ravel(), sy.ravel()).reshape(sx.shape)
    good = (idx >= 0) & ctx.site.ok[np.maximum(idx, 0)]
    ward = ctx.site.ward[np.maximum(idx, 0)]
    is_urban = ctx.wards.urban[np.maximum(ward, 0)]
    has_urban = (good & is_urban).any(axis=1)
    has_rural = (good & ~is_urban).any(axis=1)
    # Build-up order: distance from the centre, stretched along the coast (the plain runs
    # north-west to south-east), with noise, and later on higher ground.
    cx, cy = _grid_to_metric(ctx, ii * CELL_M, jj * CELL_M)
    dx, dy = cx - ctx.centre[0], cy - ctx.centre[1]
    a = ctx.coast_dir
    along = dx * a[0] + dy * a[1]
    across = -dx * a[1] + dy * a[0]
    r_km = np.hypot(dx, dy) / 1000.0
    rng = np.random.default_rng([seed, 11])
    elev = ctx.site.elev[np.maximum(ctx.site.index(cx, cy), 0)]
    key = (np.hypot(along / 1.7, across) / 1000.0 * np.exp(0.22 * rng.standard_normal(len(ii)))
           + 0.08 * np.maximum(elev - 6.0, 0.0))
    order_u = np.flatnonzero(has_urban)[np.argsort(key[has_urban], kind="stable")]
    order_r = np.flatnonzero(has_rural)[np.argsort(key[has_rural], kind="stable")]
    order = np.concatenate([order_u, order_r])
    cells = _Cells(ii[order], jj[order], r_km[order],
                   np.concatenate([np.ones(len(order_u), bool), np.zeros(len(order_r), bool)]))
    ctx.extras[("cells", seed)] = cells
    return cells


def _choose(rng: np.random.Generator, table: tuple[tuple[str, float], ...], n: int) -> np.ndarray:
    codes = np.array([LU[c] for c, _ in table])
    p = np.array([w for _, w in table])
    return codes[rng.choice(len(codes), size=n, p=p / p.sum())]


def _smooth(e0: float, e1: float, v: np.ndarray) -> np.ndarray:
    t = np.clip((v - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _layout(ctx: _Context, ci: np.ndarray, cj: np.ndarray, r: np.ndarray, urban: bool,
            rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Blocks and parcels of a batch of cells (all of one phase), filtered and in cell order."""
    n_cells = len(ci)
    art = rng.uniform(5.0, 9.0, n_cells)  # half the width of the arterial roads
    ws = rng.uniform(6.0, 11.0, n_cells)  # local streets
    if urban:
        bl_t = np.clip(85 + 7 * r, 85, 230) * rng.uniform(0.85, 1.2, n_cells)
        bd_t = np.clip(40 + 2.5 * r, 40, 90) * rng.uniform(0.9, 1.15, n_cells)
        front = np.clip(5.0 + 0.45 * r, 5.0, 15.0)
    else:
        bl_t = rng.uniform(120, 240, n_cells)
        bd_t = rng.uniform(50, 90, n_cells)
        front = np.clip(8.0 + 0.15 * r, 8.0, 14.0)
    # Outer cells are turned a little, their blocks fitted into the square between arterials.
    jit = np.where(r < 5.0, 0.0, np.clip(rng.normal(0, math.radians(JITTER_DEG), n_cells),
                                         -math.radians(2 * JITTER_DEG),
                                         math.radians(2 * JITTER_DEG)))
    inner = (CELL_M - 2 * art) / (np.cos(jit) + np.abs(np.sin(jit)))
    nu = np.maximum(1, np.floor((inner + ws) / (bl_t + ws))).astype(np.int64)
    nv = np.maximum(1, np.floor((inner + ws) / (bd_t + ws))).astype(np.int64)
    bl = (inner + ws) / nu - ws
    bd = (inner + ws) / nv - ws
    # ---- blocks
    nb = nu * nv
    bc = np.repeat(np.arange(n_cells), nb)
    k = np.arange(nb.sum()) - np.repeat(np.cumsum(nb) - nb, nb)
    iu, iv = k % nu[bc], k // nu[bc]
    bu0 = -inner[bc] / 2 + iu * (bl[bc] + ws[bc])
    bv0 = -inner[bc] / 2 + iv * (bd[bc] + ws[bc])
    blen, bdep = bl[bc], bd[bc]
    cjit, sjit = np.cos(jit[bc]), np.sin(jit[bc])
    keep = np.ones(len(bc), bool)
    for du in (0.0, 1.0):
        for dv in (0.0, 1.0):
            pu, pv = _rotate(bu0 + du * blen, bv0 + dv * bdep, cjit, sjit)
            keep &= np.maximum(np.abs(pu), np.abs(pv)) <= CELL_M / 2 - 3.0
    mu, mv = _rotate(bu0 + blen / 2, bv0 + bdep / 2, cjit, sjit)
    gx, gy = _grid_to_metric(ctx, ci[bc] * CELL_M + mu, cj[bc] * CELL_M + mv)
    site = ctx.site
    idx = site.index(gx, gy)
    idx0 = np.maximum(idx, 0)
    ward = site.ward[idx0]
    keep &= (idx >= 0) & site.ok[idx0] & (ward >= 0)
    keep &= ctx.wards.urban[np.maximum(ward, 0)] == urban
    elev = site.elev[idx0]
    rb = r[bc]
    # ---- block types
    nblk = len(bc)
    if urban:
        p_empty = np.clip(0.04 + 0.012 * rb, 0.04, 0.18)
        p_inst = np.clip(0.12 - 0.008 * rb, 0.04, 0.12)
        p_agri = 0.38 * _smooth(2.5, 12.0, rb)
        p_garden = 0.03 + 0.12 * _smooth(1.0, 6.0, rb)
    else:
        p_empty, p_inst, p_agri, p_garden = (np.full(nblk, p) for p in (0.10, 0.03, 0.32, 0.22))
    p_res = 1.0 - p_empty - p_inst - p_agri - p_garden
    cum = np.cumsum(np.stack([p_res, p_garden, p_inst, p_agri]), axis=0)
    btype = np.array([RES, GARDEN, INST, AGRI, EMPTY])[(rng.random(nblk) > cum).sum(axis=0)]
    hill = elev >= HILL_M
    btype = np.where(hill, np.where(rng.random(nblk) < 0.75, HILL, EMPTY), btype)
    inst_lu = _choose(rng, INST_URBAN if urban else INST_RURAL, nblk)
    # The Imperial City: heritage land of the state.
    imp = to_metric([IMPERIAL_CITY_LONLAT])[0]
    iu_, iv_ = _metric_to_grid(ctx, gx - imp[0] + ctx.centre[0], gy - imp[1] + ctx.centre[1])
    imperial = (np.abs(iu_) < IMPERIAL_CITY_HALF_M) & (np.abs(iv_) < IMPERIAL_CITY_HALF_M)
    btype = np.where(imperial, INST, btype)
    inst_lu = np.where(imperial, LU["DVH"], inst_lu)
    keep &= btype != EMPTY
    sel = np.flatnonzero(keep)
    if len(sel) == 0:
        return {}
    bc, iv, bu0, bv0, blen, bdep, btype, inst_lu, imperial, cjit, sjit = (
        a[sel] for a in (bc, iv, bu0, bv0, blen, bdep, btype, inst_lu, imperial, cjit, sjit))
    # ---- rows of parcels (two back to back, or one through the block)
    two = np.select([btype == RES, btype == GARDEN, btype == AGRI, btype == HILL],
                    [bdep / 2 >= 18, bdep >= 50, bdep >= 70, bdep >= 60], False)
    nrows = 1 + two.astype(np.int64)
    rb_ = np.repeat(np.arange(len(bc)), nrows)
    ri = np.arange(nrows.sum()) - np.repeat(np.cumsum(nrows) - nrows, nrows)
    depth = bdep[rb_] / nrows[rb_]
    rt = btype[rb_]
    nr = len(rb_)
    f_res = front[bc][rb_] * rng.uniform(0.85, 1.15, nr)
    frontage = np.select(
        [rt == RES, rt == GARDEN, rt == INST, rt == AGRI],
        [f_res, np.minimum(2.3 * f_res, 30.0), rng.uniform(700, 1900, nr) / depth,
         rng.uniform(300, 1500, nr) / depth],
        rng.uniform(250, 1200, nr) / depth)
    length = blen[rb_]
    m = np.rint(length / frontage)
    m = np.clip(m, np.ceil(length * depth / 1480.0), np.floor(length * depth / 108.0))
    m = np.maximum(m, 1).astype(np.int64)
    # ---- parcels
    pr = np.repeat(np.arange(nr), m)
    n_par = len(pr)
    g = rng.uniform(0.85, 1.15, n_par)
    row_start = np.cumsum(m) - m
    # Cut points along each row; neighbours share the very same numbers (no slivers).
    cut = np.cumsum(g) - np.repeat(np.cumsum(g)[row_start] - g[row_start], m)
    cut = length[pr] * cut / cut[row_start + m - 1][pr]
    first = np.zeros(n_par, bool)
    first[row_start] = True
    prev = np.where(first, 0.0, np.roll(cut, 1))
    pb = rb_[pr]  # block of each parcel
    pu0 = bu0[pb] + prev
    pu1 = bu0[pb] + cut
    w = pu1 - pu0
    pv0 = bv0[pb] + ri[pr] * depth[pr]
    pdep = depth[pr]
    # Land use
    pt = btype[pb]
    u2 = rng.random(n_par)
    rp = r[bc][pb]
    if urban:
        p_tmd = np.where(rp < 3.0, 0.12, 0.06)
        res_lu = np.where(u2 < p_tmd, LU["TMD"], np.where(u2 < p_tmd + 0.05, LU["CLN"], LU["ODT"]))
        home = LU["ODT"]
    else:
        res_lu = np.where(u2 < 0.03, LU["TMD"], np.where(u2 < 0.18, LU["CLN"], LU["ONT"]))
        home = LU["ONT"]
    agri_lu = np.where(u2 < 0.6, LU["LUC"], np.where(u2 < 0.75, LU["HNK"], LU["CLN"]))
    lu = np.select([pt == RES, pt == GARDEN, pt == INST, pt == AGRI],
                   [res_lu, np.where(u2 < 0.55, LU["CLN"], home), inst_lu[pb], agri_lu],
                   np.where(u2 < 0.55, LU["NTD"], LU["CLN"]))
    # Centroids in EPSG:9214
    cc = ci[bc][pb] * CELL_M
    cr = cj[bc][pb] * CELL_M
    pv1 = bv0[pb] + (ri[pr] + 1) * depth[pr]
    cu_, cv_ = _rotate((pu0 + pu1) / 2, (pv0 + pv1) / 2, cjit[pb], sjit[pb])
    px, py = _grid_to_metric(ctx, cc + cu_, cr + cv_)
    # Keep parcels on buildable land of this phase, off the water.
    idx = site.index(px, py)
    idx0 = np.maximum(idx, 0)
    pward = site.ward[idx0].astype(np.int64)
    ok = (idx >= 0) & site.ok[idx0] & (pward >= 0)
    ok &= ctx.wards.urban[np.maximum(pward, 0)] == urban
    wet = np.flatnonzero(ok & site.near_water[idx0])
    if len(wet):
        water = ctx.terrain.water(px[wet], py[wet])
        half_diag = 0.5 * np.hypot(w[wet], pdep[wet]) + 3.0
        ok[wet] = (water["river"] > half_diag) & (water["lagoon"] > half_diag)
    keep = np.flatnonzero(ok)
    # Rings: the four corners plus, on the edge shared by back-to-back rows, the cut points of
    # the other row, so that neighbours share every vertex (no slivers once in lon/lat).
    last = np.zeros(n_par, bool)
    last[row_start + m - 1] = True
    blk_row0 = np.cumsum(nrows) - nrows  # first row of each block
    cut_i = np.flatnonzero(two[pb] & ~last)
    order = np.lexsort((pu1[cut_i], pb[cut_i]))
    cut_i = cut_i[order]
    tag = ri[pr][cut_i]
    cblk = pb[cut_i]
    first_in_blk = np.searchsorted(cblk, cblk, side="left")
    cum = {t: np.cumsum(tag == t) - (tag == t) for t in (0, 1)}
    # how many cuts of the other row lie before this one in the block = the parcel it splits
    k_other = np.where(tag == 1, cum[0] - cum[0][first_in_blk], cum[1] - cum[1][first_in_blk])
    target = row_start[blk_row0[cblk] + (1 - tag)] + k_other
    kept = np.zeros(n_par, bool)
    kept[keep] = True
    cut_i, target, tag = cut_i[kept[target]], target[kept[target]], tag[kept[target]]
    ins_u = pu1[cut_i]
    ins_v = np.where(tag == 1, pv1[target], pv0[target])  # top edge of row 0 / bottom of row 1
    frac = (ins_u - pu0[target]) / w[target]
    ins_key = np.where(tag == 1, 4.0 + 0.5 * (1 - frac), 1.0 + 0.5 * frac)
    kk = np.repeat(keep, 5)
    vu = np.column_stack([pu0, pu1, pu1, pu0, pu0])[keep].ravel()
    vv = np.column_stack([pv0, pv0, pv1, pv1, pv0])[keep].ravel()
    vkey = np.tile([0.0, 2.0, 3.0, 5.0, 6.0], len(keep))
    vp = np.concatenate([kk, target])
    vu = np.concatenate([vu, ins_u])
    vv = np.concatenate([vv, ins_v])
    vkey = np.concatenate([vkey, ins_key])
    order = np.lexsort((vkey, vp))
    vp, vu, vv = vp[order], vu[order], vv[order]
    lu_, lv_ = _rotate(vu, vv, cjit[pb][vp], sjit[pb][vp])
    vx, vy = _grid_to_metric(ctx, cc[vp] + lu_, cr[vp] + lv_)
    lon, lat = _to_lonlat(vx, vy)
    ring_id = np.searchsorted(keep, vp)
    polys = shapely.polygons(shapely.linearrings(np.column_stack([lon, lat]), indices=ring_id))
    inside = np.zeros(len(keep), bool)
    pw = pward[keep]
    for wi in np.unique(pw):
        s = np.flatnonzero(pw == wi)
        inside[s] = shapely.contains_properly(ctx.wards.geom[wi], polys[s])
    keep, polys = keep[inside], polys[inside]
    # Address parts: the street each parcel fronts and its house number.
    street_k = iv[pb] + ri[pr]  # row 0 fronts the street below the block, row 1 the one above
    ci_p, cj_p = ci[bc][pb], cj[bc][pb]
    street = (_hash(ci_p, cj_p, street_k) % np.uint64(len(STREETS))).astype(np.int64)
    house = (2 * np.floor((pu0 + w / 2 + CELL_M / 2 + (ci_p % 7) * CELL_M) / 7.0)
             + 1 + ri[pr]).astype(np.int64)
    out = {"ward": pward, "lu": lu, "area": w * pdep, "x": px, "y": py, "btype": pt,
           "r": rp, "imperial": imperial[pb], "street": street, "house": house,
           "hamlet": (_hash(ci_p // 3, cj_p // 3) % np.uint64(14)).astype(np.int64) + 1,
           "kiet": np.where(rng.random(n_par) < 0.22, rng.integers(1, 120, n_par), 0)}
    out = {k: v[keep] for k, v in out.items()}
    out["poly"] = polys
    return out


def _parcel_batches(ctx: _Context, seed: int) -> Iterator[dict[str, np.ndarray]]:
    """Candidate parcels batch by batch, innermost cells first (urban wards, then communes)."""
    cells = _cells(ctx, seed)
    start, size, b = 0, 12, 0
    while start < len(cells.i):
        stop = start + size
        # A batch never mixes phases.
        phase = cells.urban[start]
        stop = min(stop, len(cells.i))
        if cells.urban[stop - 1] != phase:
            stop = start + int(np.argmax(cells.urban[start:stop] != phase))
        rng = np.random.default_rng([seed, 12, b])
        sl = slice(start, stop)
        out = _layout(ctx, cells.i[sl], cells.j[sl], cells.r_km[sl], bool(phase), rng)
        if out and len(out["poly"]):
            out["urban"] = np.full(len(out["poly"]), bool(phase))
            yield out
        start, b, size = stop, b + 1, min(size * 2, 1024)


def _sheet_index(ctx: _Context) -> tuple[np.ndarray, np.ndarray]:
    """Cadastral map sheets of every ward: sorted keys ``(ward, row, col)`` and their numbers
    (1… per ward, north to south, west to east)."""
    cached = ctx.extras.get("sheets")
    if cached is not None:
        return cached
    keys, numbers = [], []
    for wi, geom in enumerate(ctx.wards.metric):
        size = SHEET_M[bool(ctx.wards.urban[wi])]
        x0, y0, x1, y1 = geom.bounds
        cols = np.arange(math.floor(x0 / size), math.ceil(x1 / size))
        rows = np.arange(math.floor(y0 / size), math.ceil(y1 / size))
        cc, rr = (a.ravel() for a in np.meshgrid(cols, rows))
        shapely.prepare(geom)
        hit = shapely.intersects(geom, shapely.box(cc * size, rr * size, (cc + 1) * size,
                                                   (rr + 1) * size))
        cc, rr = cc[hit], rr[hit]
        order = np.lexsort((cc, -rr))
        keys.append(_sheet_key(np.full(len(cc), wi), rr[order], cc[order]))
        numbers.append(np.arange(1, len(cc) + 1))
    k = np.concatenate(keys)
    nums = np.concatenate(numbers)
    o = np.argsort(k)
    ctx.extras["sheets"] = (k[o], nums[o])
    return k[o], nums[o]


def _sheet_key(ward: np.ndarray, row: np.ndarray, col: np.ndarray) -> np.ndarray:
    return (ward.astype(np.int64) * 10_000 + row) * 10_000 + col


def _sheet_numbers(ctx: _Context, ward: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    keys, nums = _sheet_index(ctx)
    size = np.where(ctx.wards.urban[ward], SHEET_M[True], SHEET_M[False])
    k = _sheet_key(ward, np.floor(y / size).astype(np.int64), np.floor(x / size).astype(np.int64))
    pos = np.clip(np.searchsorted(keys, k), 0, len(keys) - 1)
    return np.where(keys[pos] == k, nums[pos], 999)


class _Numbering:
    """Parcel numbers per (ward, map sheet), continuing after those already in the table."""

    def __init__(self, conn: psycopg.Connection | None, wards: _Wards):
        index = {c: i for i, c in enumerate(wards.codes)}
        self.next: dict[int, int] = {}
        if conn is None:
            return
        for code, sheet, top in conn.execute(
                "SELECT ward_code, map_sheet_no, max(parcel_no::bigint) FROM land_parcels "
                "WHERE parcel_no ~ '^[0-9]{1,12}$' AND map_sheet_no ~ '^[0-9]{1,6}$' "
                "GROUP BY 1, 2"):
            if code in index:
                self.next[index[code] * 1_000_000 + int(sheet)] = int(top)

    def assign(self, ward: np.ndarray, sheet: np.ndarray) -> np.ndarray:
        key = ward.astype(np.int64) * 1_000_000 + sheet
        uniq, inv = np.unique(key, return_inverse=True)
        order = np.argsort(inv, kind="stable")
        counts = np.bincount(inv, minlength=len(uniq))
        starts = np.cumsum(counts) - counts
        rank = np.empty(len(key), np.int64)
        rank[order] = np.arange(len(key)) - np.repeat(starts, counts)
        base = np.array([self.next.get(int(k), 0) for k in uniq], dtype=np.int64)
        for k, b, c in zip(uniq.tolist(), base.tolist(), counts.tolist(), strict=True):
            self.next[k] = b + c
        return base[inv] + rank + 1


ZONING = {
    "ONT": "Đất ở làng xóm hiện hữu", "CLN": "Đất nông nghiệp", "LUC": "Đất nông nghiệp",
    "HNK": "Đất nông nghiệp", "TMD": "Đất thương mại, dịch vụ",
    "SKC": "Đất cụm công nghiệp, tiểu thủ công nghiệp", "DGD": "Đất công trình công cộng",
    "DYT": "Đất công trình công cộng", "DVH": "Đất công trình công cộng",
    "TON": "Đất tôn giáo, tín ngưỡng", "DKV": "Đất cây xanh, công viên",
    "DGT": "Đất giao thông", "SON": "Đất mặt nước", "NTD": "Đất nghĩa trang, nghĩa địa",
}
SCHOOLS = ("Trường Mầm non", "Trường Tiểu học", "Trường THCS", "Trường THPT")


def _parcel_rows(ctx: _Context, numbering: _Numbering, n: int, seed: int
                 ) -> Iterator[tuple]:
    wards = ctx.wards
    rng = np.random.default_rng([seed, 13])
    citadel = to_metric([CITADEL_LONLAT])[0]
    left = n
    for batch in _parcel_batches(ctx, seed):
        if left <= 0:
            break
        k = min(left, len(batch["poly"]))
        b = {key: v[:k] for key, v in batch.items()}
        left -= k
        ward = b["ward"]
        sheet = _sheet_numbers(ctx, ward, b["x"], b["y"])
        number = numbering.assign(ward, sheet)
        geom = shapely.to_wkb(shapely.set_srid(shapely.multipolygons(b["poly"],
                                                                     indices=np.arange(k)), 4326),
                              hex=True, include_srid=True)
        lu = b["lu"]
        u = rng.random((4, k))
        people_m, _, _ = _people(rng, k, np.zeros(k, bool))
        people_f, _, _ = _people(rng, k, np.ones(k, bool))
        form = rng.choice(5, size=k, p=[.30, .20, .15, .10, .25])
        in_citadel = np.hypot(b["x"] - citadel[0], b["y"] - citadel[1]) < CITADEL_RADIUS_M
        cols = (sheet.tolist(), number.tolist(), lu.tolist(), np.round(b["area"], 1).tolist(),
                ward.tolist(), b["street"].tolist(), b["house"].tolist(), b["kiet"].tolist(),
                b["hamlet"].tolist(), b["btype"].tolist(), b["r"].tolist(),
                b["imperial"].tolist(), in_citadel.tolist(), b["urban"].tolist(), form.tolist(),
                u[0].tolist(), u[1].tolist(), u[2].tolist(), u[3].tolist(), people_m.tolist(),
                people_f.tolist(), geom.tolist())
        for (sh, no, lui, area, wi, st, house, kiet, hamlet, bt, r, imperial, citadel_zone,
             urban, fm, u0, u1, u2, u3, man, woman, g) in zip(*cols, strict=True):
            code = LU_CODES[lui]
            ward_name = wards.names[wi]
            short = wards.short_names[wi]
            # Owner
            if code in ("ODT", "ONT", "CLN", "LUC", "HNK") and not (code == "ODT" and u0 < .03):
                owner_type = "household"
                owner = (f"Ông {man}", f"Bà {woman}", f"Hộ ông {man}", f"Hộ bà {woman}",
                         f"Ông {man} và bà {woman}")[fm]
            elif code in ("TMD", "SKC", "ODT") and (code != "TMD" or u0 < .55):
                owner_type = "organisation"
                kind = "Công ty TNHH" if u1 < .6 else "Công ty Cổ phần"
                owner = (f"{kind} {SECTORS[int(u2 * len(SECTORS))]} "
                         f"{PLACES[int(u3 * len(PLACES))]}")
            elif code == "TMD":
                owner_type = "household"
                owner = f"Hộ kinh doanh {man if u1 < .5 else woman}"
            elif code == "TON":
                owner_type = "religious"
                owner = (f"Chùa {PAGODAS[int(u2 * len(PAGODAS))]}" if u1 < .72 else
                         f"Giáo xứ {PARISHES[int(u2 * len(PARISHES))]}" if u1 < .92 else
                         f"Chi hội Tin Lành {short}")
            elif code == "NTD" and u1 < .75:
                owner_type = "community"
                owner = (f"Họ {man.split()[0]} {short}" if u2 < .6 else
                         f"Cộng đồng dân cư {'tổ dân phố' if urban else 'thôn'} {hamlet}")
            else:
                owner_type = "state"
                if imperial:
                    owner = "Trung tâm Bảo tồn Di tích Cố đô Huế"
                elif code == "DGD":
                    owner = f"{SCHOOLS[int(u2 * 4)]} {short}" + (f" {hamlet}" if u3 < .4 else "")
                elif code == "DYT":
                    owner = f"Trạm Y tế {ward_name}" if u2 < .7 else "Sở Y tế thành phố Huế"
                elif code == "DVH":
                    owner = f"Nhà văn hóa {'tổ dân phố' if urban else 'thôn'} {hamlet}, {short}"
                elif code == "DGT":
                    owner = "Sở Xây dựng thành phố Huế"
                else:
                    owner = f"UBND {ward_name}"
            # Zoning
            if imperial:
                zoning = "Khu vực bảo vệ I – Hoàng thành Huế"
            elif citadel_zone:
                zoning = "Khu vực bảo vệ II – Kinh thành Huế"
            elif code == "ODT":
                zoning = ("Đất ở hiện trạng cải tạo, chỉnh trang" if r < 4 or u2 < .6
                          else "Đất ở mới")
            elif code == "NTD" and urban and r < 8:
                zoning = "Đất nghĩa trang (di dời theo quy hoạch)"
            elif code in ("LUC", "HNK", "CLN") and urban and u2 < .25:
                zoning = "Đất nông nghiệp (chuyển đổi sang đất ở đô thị)"
            else:
                zoning = ZONING[code]
            # Address
            if not urban:
                address = f"Thôn {hamlet}, {ward_name}"
            elif bt in (AGRI, HILL) or code in ("NTD", "LUC", "HNK"):
                address = f"Tổ dân phố {hamlet}, {ward_name}"
            elif kiet:
                address = f"{house}/{kiet} {STREETS[st]}, {ward_name}"
            else:
                address = f"{house} {STREETS[st]}, {ward_name}"
            yield (str(no), str(sh), code, area, zoning, owner_type, owner, wards.codes[wi],
                   address, SOURCE, g)
    if left > 0:
        raise ValueError(f"Huế has room for fewer parcels than requested ({n - left:,} of {n:,})")


def generate_parcels(conn: psycopg.Connection, n: int, seed: int = 46,
                     progress: ProgressFn | None = None) -> int:
    """Generate ``n`` land parcels over Huế's wards and COPY them into ``land_parcels``.

    Parcels are laid out on a street grid in EPSG:9214 that fills outward from central Huế:
    tube-house lots of about 100–250 m² in the centre, larger residential, garden, farm and
    institutional lots (80–2,000 m²) outward, urban wards (*phường*) first and the communes
    (*xã*) once those are full. Each parcel lies inside its ward, off rivers, lagoon and
    mountains, with ``area_m2`` measured in EPSG:9214, a map sheet and parcel number unique
    within its ward, land use, zoning, owner and address. The connection is not committed.

    Parameters
    ----------
    conn : psycopg.Connection
        An open connection to a database with the wards loaded.
    n : int
        Number of parcels (1,000,000 works).
    seed : int
        Random seed: the same seed gives the same parcels.
    progress : callable, optional
        Called with the number of rows written since its last call.

    Returns
    -------
    int
        The number of rows written (``n``).
    """
    if n <= 0:
        return 0
    ctx = _context(conn, seed)
    numbering = _Numbering(conn, ctx.wards)  # (no queries once COPY has started)
    return copy_rows(conn, "land_parcels", PARCEL_COLUMNS,
                     _parcel_rows(ctx, numbering, n, seed), progress=progress)


# ------------------------------------------------------------------------ calendar helpers
# Public holidays (Tết Nguyên đán, Hùng Kings, 30/4–1/5, 2/9, New Year), for working days.
_TET = ("2019-02-05", "2020-01-25", "2021-02-12", "2022-02-01", "2023-01-22", "2024-02-10",
        "2025-01-29", "2026-02-17", "2027-02-06")
_HUNG_KINGS = ("2019-04-14", "2020-04-02", "2021-04-21", "2022-04-10", "2023-04-29",
               "2024-04-18", "2025-04-07", "2026-04-26", "2027-04-16")


@lru_cache(maxsize=1)
def holidays() -> np.ndarray:
    """Vietnamese public holidays 2019–2027 (``datetime64[D]``), used for working days.

    Example
    -------
    >>> bool(np.datetime64("2026-09-02") in holidays())
    True
    """
    days = []
    for y in range(2019, 2028):
        days += [f"{y}-01-01", f"{y}-04-30", f"{y}-05-01", f"{y}-09-02"]
        if y >= 2021:
            days.append(f"{y}-09-01" if y in (2021, 2022, 2024, 2025, 2027) else f"{y}-09-03")
    tet = np.array(_TET, dtype="datetime64[D]")
    out = np.concatenate([np.array(days, dtype="datetime64[D]"),
                          np.array(_HUNG_KINGS, dtype="datetime64[D]"),
                          (tet[:, None] + np.arange(-2, 5)).ravel()])
    return np.unique(out)


def _sample_days(rng: np.random.Generator, n: int, start: str, end: str, growth: float,
                 weight: np.ndarray | None = None) -> np.ndarray:
    """``n`` working days between ``start`` and ``end`` (inclusive), the yearly volume growing
    by ``growth``; ``weight`` (one per calendar day) shapes the seasons."""
    first, last = np.datetime64(start, "D"), np.datetime64(end, "D")
    span = int((last - first).astype(int)) + 1
    t = np.arange(span)
    w = growth ** (t / 365.25) * np.is_busday(first + t, holidays=holidays())
    if weight is not None:
        w = w * weight
    return first + rng.choice(span, size=n, p=w / w.sum())


# --------------------------------------------------------------------------- construction
CONSTRUCTION_COLUMNS = ("record_no", "kind", "work_type", "status", "applicant_type",
                        "issued_on", "expires_on", "floors", "footprint_m2", "address",
                        "ward_code", "inspector_notes", "source", "geom")
BUILDING_LAND_USES = ("ODT", "ONT", "TMD", "SKC", "CLN", "DGD", "DYT", "DVH", "TON")
INSPECTORS = 60


def _construction_lots(conn: psycopg.Connection, n: int, seed: int) -> dict[str, list]:
    """``n`` lots for buildings: existing parcels (a deterministic pseudo-random pick), or the
    lots :func:`generate_parcels` would lay out when the table has too few parcels."""
    rows = conn.execute(
        "SELECT ST_AsBinary(geom), ward_code, address, land_use FROM land_parcels "
        "WHERE land_use = ANY(%s) AND ward_code IS NOT NULL "
        "ORDER BY hashtextextended(ward_code || '/' || map_sheet_no || '/' || parcel_no, %s), "
        "id LIMIT %s", (list(BUILDING_LAND_USES), seed, n)).fetchall()
    if len(rows) == n:
        return {"geom": shapely.from_wkb([bytes(r[0]) for r in rows]),
                "ward_code": [r[1] for r in rows], "address": [r[2] for r in rows],
                "land_use": [r[3] for r in rows]}
    ctx = _context(conn, seed)
    lots: dict[str, list] = {"geom": [], "ward_code": [], "address": [], "land_use": []}
    for row in _parcel_rows(ctx, _Numbering(None, ctx.wards), 4 * n + 1000, seed):
        if row[2] in BUILDING_LAND_USES:
            lots["geom"].append(row[-1])
            lots["ward_code"].append(row[7])
            lots["address"].append(row[8])
            lots["land_use"].append(row[2])
            if len(lots["geom"]) == n:
                break
    if len(lots["geom"]) < n:
        raise ValueError(f"not enough room for {n:,} construction records")
    lots["geom"] = shapely.from_wkb(lots["geom"])
    return lots


def _footprints(lots: np.ndarray, land_use: np.ndarray, fence: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Building footprints inside ``lots`` (EPSG:4326) → (MultiPolygons in 4326, m² in 9214)."""
    n = len(lots)
    lot = metric_geometry(shapely.get_geometry(lots, 0))  # the first part of each lot
    inset = shapely.buffer(lot, -rng.uniform(0.4, 1.5, n), join_style="mitre")
    thin = shapely.is_empty(inset) | (shapely.area(inset) < 12)
    inset = np.where(thin, shapely.buffer(lot, -0.25, join_style="mitre"), inset)
    room = shapely.area(inset)
    cap = np.select(
        [np.isin(land_use, ("ODT", "ONT")), land_use == "TMD", land_use == "SKC",
         land_use == "CLN"],
        [rng.uniform(45, 260, n), rng.uniform(120, 900, n), rng.uniform(250, 1400, n),
         rng.uniform(50, 180, n)], rng.uniform(250, 1100, n))
    target = np.minimum(room * rng.uniform(0.55, 0.92, n), cap)
    f = np.sqrt(np.clip(target / np.maximum(room, 1e-9), 0.05, 1.0))
    # Scale each inset about its centroid (vectorised over all coordinates).
    centroid = shapely.get_coordinates(shapely.centroid(inset))
    coords, which = shapely.get_coordinates(inset, return_index=True)
    scaled = shapely.set_coordinates(
        inset.copy(), centroid[which] + f[which, None] * (coords - centroid[which]))
    bad = ~shapely.contains(lot, scaled)  # non-convex lots: keep what lies inside
    if bad.any():
        scaled[bad] = shapely.intersection(scaled[bad], inset[bad])
    # Fences: a 25 cm strip just inside the lot boundary.
    strip = shapely.difference(shapely.buffer(lot, -0.05, join_style="mitre"),
                               shapely.buffer(lot, -0.30, join_style="mitre"))
    scaled = np.where(fence, strip, scaled)
    scaled = shapely.make_valid(scaled)
    area = shapely.area(scaled)
    t = transformer(METRIC_EPSG, 4326)
    geo = shapely.transform(scaled, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))
    parts, index = shapely.get_parts(geo, return_index=True)
    poly = shapely.get_type_id(parts) == 3
    multi = shapely.multipolygons(parts[poly], indices=index[poly])
    out = np.full(n, None, dtype=object)
    out[np.unique(index[poly])] = multi
    return out, area


def _record_numbers(conn: psycopg.Connection, prefix: np.ndarray, year: np.ndarray,
                    order_key: np.ndarray) -> list[str]:
    """'GPXD-2024-001234': per prefix and year in date order, after those in the table."""
    start: dict[tuple[str, int], int] = {}
    for pre, yr, top in conn.execute(
            "SELECT split_part(record_no, '-', 1), split_part(record_no, '-', 2)::int, "
            "max(split_part(record_no, '-', 3)::bigint) FROM construction "
            "WHERE record_no ~ '^[A-Z]+-[0-9]{4}-[0-9]{1,12}$' GROUP BY 1, 2"):
        start[(pre, yr)] = int(top)
    out = [""] * len(prefix)
    for i in np.lexsort((np.arange(len(prefix)), order_key)).tolist():
        key = (prefix[i], int(year[i]))
        start[key] = start.get(key, 0) + 1
        out[i] = f"{key[0]}-{key[1]}-{start[key]:06d}"
    return out


def generate_construction(conn: psycopg.Connection, n: int, seed: int = 46,
                          progress: ProgressFn | None = None) -> int:
    """Generate ``n`` building permits and violations and COPY them into ``construction``.

    Footprints are buildings (or, for fence works, a 25 cm strip along the lot boundary) inset
    into a deterministic pick of existing parcels with buildable land use; with too few parcels
    in the table, into the lots :func:`generate_parcels` lays out. About 78 % are permits
    (``GPXD-yyyy-nnnnnn``: submitted, approved, rejected, under construction, completed, expired
    by age) and 22 % violations (``VPXD-yyyy-nnnnnn``: detected, fined, remedied, demolished),
    2019-01 to 2026-11, with floors, ``footprint_m2`` (EPSG:9214), address, ward and private
    inspector notes. The connection is not committed.

    Parameters
    ----------
    conn : psycopg.Connection
        An open connection to a database with the wards (and usually parcels) loaded.
    n : int
        Number of records.
    seed : int
        Random seed: the same seed (and the same parcels) gives the same records.
    progress : callable, optional
        Called with the number of rows written since its last call.

    Returns
    -------
    int
        The number of rows written.
    """
    if n <= 0:
        return 0
    rng = np.random.default_rng([seed, 21])
    lots = _construction_lots(conn, n, seed)
    land_use = np.array(lots["land_use"], dtype=object)
    violation = rng.random(n) < 0.22
    u = rng.random((6, n))
    # What is built
    work = np.where(
        violation,
        np.array(["new_build", "extension", "renovation", "fence"])[
            np.searchsorted([.35, .70, .85], u[0])],
        np.array(["new_build", "renovation", "extension", "demolition", "fence"])[
            np.searchsorted([.55, .73, .88, .93], u[0])])
    geoms, area = _footprints(lots["geom"], land_use, work == "fence", rng)
    big = np.isin(land_use, ("TMD", "DGD", "DYT", "DVH", "SKC"))
    floors = np.where(big, rng.choice(np.arange(1, 16), n, p=_floor_p(True)),
                      rng.choice(np.arange(1, 16), n, p=_floor_p(False)))
    floors = np.where(np.isin(land_use, ("CLN", "ONT")), np.minimum(floors, 3), floors)
    # When: applications grow ~8 % a year; permits are decided on working days.
    day = _sample_days(rng, n, "2019-01-01", str(INCIDENTS_END.astype("datetime64[D]")), 1.08)
    end = INCIDENTS_END.astype("datetime64[D]")
    age = (end - day).astype(int)
    rejected = ~violation & (u[1] < 0.05)
    submitted = ~violation & ~rejected & (age < 20) & (u[2] < 0.75)
    permit_status = np.select(
        [rejected, submitted, age < 60, age < 365],
        ["rejected", "submitted",
         np.where(u[3] < 0.7, "approved", "under_construction"),
         np.array(["under_construction", "approved", "completed"])[
             np.searchsorted([.55, .70], u[3])]],
        np.array(["completed", "expired", "under_construction"])[np.searchsorted([.85, .95],
                                                                                 u[3])])
    violation_status = np.select(
        [age < 30, age < 180],
        [np.where(u[3] < 0.7, "detected", "fined"),
         np.array(["fined", "remedied", "detected", "demolished"])[
             np.searchsorted([.5, .8, .9], u[3])]],
        np.array(["remedied", "demolished", "fined"])[np.searchsorted([.55, .75], u[3])])
    status = np.where(violation, violation_status, permit_status)
    deadline = day + rng.choice([30, 60, 90], n)
    expires = np.where(violation, deadline,
                       (day.astype("datetime64[M]") + 12).astype("datetime64[D]")
                       + (day - day.astype("datetime64[M]").astype("datetime64[D]")))
    issued_text = np.datetime_as_string(day).astype(object)
    expires_text = np.datetime_as_string(expires).astype(object)
    issued_text[submitted] = None
    expires_text[submitted | rejected] = None
    applicant = np.where(
        np.isin(land_use, ("DGD", "DYT", "DVH")), np.where(u[4] < .9, "state", "organisation"),
        np.where(np.isin(land_use, ("TMD", "SKC", "TON")),
                 np.where(u[4] < .7, "organisation", "household"),
                 np.where(u[4] < .96, "household", "organisation")))
    floors_out = np.where(work == "fence", -1, floors)
    # Numbers in date order, per kind and year
    prefix = np.where(violation, "VPXD", "GPXD")
    record_no = _record_numbers(conn, prefix, day.astype("datetime64[Y]").astype(int) + 1970,
                                day.astype(int))
    inspectors, _, _ = _people(rng, INSPECTORS)
    who = rng.integers(0, INSPECTORS, n)
    notes = _inspector_notes(rng, violation, status, work, floors, land_use, lots["address"])
    ok = np.array([g is not None for g in geoms])
    geom_hex = np.full(n, None, dtype=object)
    geom_hex[ok] = shapely.to_wkb(shapely.set_srid(geoms[ok].astype(object), 4326), hex=True,
                                  include_srid=True)

    def rows() -> Iterator[tuple]:
        for i in range(n):
            if not ok[i]:
                continue
            fl = int(floors_out[i])
            yield (record_no[i], "violation" if violation[i] else "permit", work[i], status[i],
                   applicant[i], issued_text[i], expires_text[i], None if fl < 0 else fl,
                   round(float(area[i]), 1), lots["address"][i], lots["ward_code"][i],
                   f"{notes[i]} (CB: {inspectors[who[i]]})", SOURCE, geom_hex[i])

    return copy_rows(conn, "construction", CONSTRUCTION_COLUMNS, rows(), progress=progress)


def _floor_p(big: bool) -> np.ndarray:
    """Floors 1–15: houses mostly 2–4, larger buildings up to 9, rarely more."""
    p = (np.array([5, 10, 14, 16, 14, 11, 9, 7, 5, 3, 2, 1.5, 1, 0.8, 0.7]) if big else
         np.array([14, 30, 28, 15, 6, 3, 1.5, 1, 0.6, 0.3, 0.2, 0.1, 0.1, 0.1, 0.1]))
    return p / p.sum()


def _inspector_notes(rng: np.random.Generator, violation: np.ndarray, status: np.ndarray,
                     work: np.ndarray, floors: np.ndarray, land_use: np.ndarray,
                     address: list) -> list[str]:
    n = len(status)
    k = rng.integers(0, 1_000_000, n)
    out = []
    for i in range(n):
        st, wk = status[i], work[i]
        if violation[i]:
            what = {
                "new_build": "Xây dựng không có giấy phép" + (
                    " trên đất nông nghiệp" if land_use[i] in ("CLN", "LUC", "HNK") else ""),
                "extension": f"Cơi nới lấn chiếm hành lang kiệt khoảng {k[i] % 12 + 2} m²"
                if k[i] % 2 else f"Xây dựng sai giấy phép: vượt {k[i] % 2 + 1} tầng",
                "renovation": "Sửa chữa, cải tạo làm thay đổi kết cấu chịu lực không phép",
                "fence": "Xây tường rào lấn chiếm đất công",
            }[wk]
            then = {
                "detected": "Đã lập biên bản, yêu cầu dừng thi công.",
                "fined": f"Đã ban hành quyết định xử phạt {(k[i] % 8 + 1) * 5} triệu đồng.",
                "remedied": "Chủ đầu tư đã tự khắc phục vi phạm.",
                "demolished": "Đã cưỡng chế tháo dỡ phần công trình vi phạm.",
            }[st]
            out.append(f"{what}. {then}")
        else:
            base = {
                "submitted": "Hồ sơ đang thẩm định.",
                "rejected": "Không cấp phép: không phù hợp quy hoạch chi tiết."
                if k[i] % 2 else "Không cấp phép: hồ sơ không đủ điều kiện.",
                "approved": "Hồ sơ đầy đủ, phù hợp quy hoạch; đã cấp phép.",
                "under_construction": "Đã kiểm tra hiện trường: thi công đúng giấy phép."
                if k[i] % 5 else "Đã nhắc nhở che chắn, vệ sinh môi trường khi thi công.",
                "completed": "Đã nghiệm thu, công trình đúng giấy phép.",
                "expired": "Giấy phép hết hạn, chưa khởi công.",
            }[st]
            if wk in ("new_build", "extension") and floors[i] >= 4 and k[i] % 3 == 0:
                base += f" Chiều cao {floors[i]} tầng theo quy chế quản lý kiến trúc."
            if "Phú Xuân" in (address[i] or "") and k[i] % 4 == 0:
                base += " Có ý kiến của Trung tâm Bảo tồn Di tích Cố đô Huế."
            out.append(base)
    return out


# ------------------------------------------------------------------------------ incidents
INCIDENT_COLUMNS = ("id", "ref", "category", "description", "status", "priority", "channel",
                    "address", "ward_code", "reporter_name", "reporter_phone", "reporter_email",
                    "sla_due_at", "resolved_at", "rating", "source", "created_at", "updated_at",
                    "geom")
EVENT_COLUMNS = ("incident_id", "at", "actor", "kind", "from_status", "to_status", "note",
                 "data")
CATEGORIES = tuple(INCIDENT_CATEGORIES)
CATEGORY_SHARE = {"roads": .17, "lighting": .11, "waste": .21, "drainage": .13, "trees": .09,
                  "construction": .10, "noise": .08, "public_order": .11}
SLA_WORKING_DAYS = {"roads": 5, "lighting": 3, "waste": 2, "drainage": 3, "trees": 3,
                    "construction": 7, "noise": 2, "public_order": 2}
SLA_URGENT_HOURS = {"roads": 8, "lighting": 8, "waste": 6, "drainage": 4, "trees": 4,
                    "construction": 24, "noise": 4, "public_order": 2}
URGENT_SHARE = {"roads": .05, "lighting": .03, "waste": .02, "drainage": .10, "trees": .08,
                "construction": .02, "noise": .02, "public_order": .08}
OPEN_SHARE = 0.02  # reports not processed yet (received, assigned, in progress)
INCIDENT_GROWTH = 1.3  # yearly growth of the volume of reports
RATING_P = (0.015, 0.025, 0.04, 0.30, 0.62)  # 1–5 stars: 92 % satisfied (4 or 5)
WORK_START, WORK_END = 7.5 * 3600, 17.0 * 3600
DAY = 86400
# Event stages: (kind, from_status, to_status); the index orders events of equal time.
STAGES = (("received", None, "received"), ("assigned", "received", "assigned"),
          ("duplicate", "received", "duplicate"), ("in_progress", "assigned", "in_progress"),
          ("resolved", "in_progress", "resolved"), ("rejected", "assigned", "rejected"),
          ("rated", None, None), ("reopened", "resolved", "reopened"),
          ("in_progress", "reopened", "in_progress"), ("resolved", "in_progress", "resolved"),
          ("rated", None, None))
(S_RECEIVED, S_ASSIGNED, S_DUPLICATE, S_IN_PROGRESS, S_RESOLVED, S_REJECTED, S_RATED,
 S_REOPENED, S_IN_PROGRESS2, S_RESOLVED2, S_RATED2) = range(len(STAGES))

DESCRIPTIONS = {
    "roads": ("Mặt đường {street} xuất hiện nhiều ổ gà, gây nguy hiểm cho người đi xe máy.",
              "Nắp hố ga trên đường {street} bị vỡ, đề nghị thay thế sớm.",
              "Vỉa hè trước số {no} {street} bị sụt lún, gạch lát bong tróc.",
              "Biển báo giao thông ở ngã tư {street} bị nghiêng đổ.",
              "Đoạn đường kiệt {kiet} {street} lầy lội, xuống cấp sau mưa."),
    "lighting": ("Đèn đường đoạn {street} không sáng nhiều đêm nay, đi lại rất nguy hiểm.",
                 "Cột đèn chiếu sáng trước số {no} {street} bị nghiêng, có nguy cơ đổ.",
                 "Đèn chiếu sáng kiệt {kiet} {street} sáng cả ban ngày, gây lãng phí.",
                 "Dây điện chiếu sáng trên đường {street} bị đứt, buông thấp."),
    "waste": ("Rác tập kết tràn ra lòng đường {street}, bốc mùi hôi thối.",
              "Có người đổ trộm xà bần, rác xây dựng ở bãi đất trống gần {street}.",
              "Xe thu gom rác không đến khu vực kiệt {kiet} {street} mấy ngày nay.",
              "Thùng rác công cộng trên đường {street} bị hư hỏng, rác vương vãi.",
              "Xác động vật chết trôi dạt ở mương gần {street}, đề nghị xử lý."),
    "drainage": ("Mưa lớn, nước ngập sâu khoảng {depth} cm trên đường {street}, xe không qua "
                 "được.",
                 "Cống thoát nước tại {street} bị tắc, nước thải tràn lên mặt đường.",
                 "Mương thoát nước khu dân cư kiệt {kiet} {street} bồi lắng, bốc mùi.",
                 "Nước lũ dâng cao tràn vào nhà dân ở kiệt {kiet} {street}, cần hỗ trợ.",
                 "Hố ga trước số {no} {street} bị mất nắp, nước chảy xiết rất nguy hiểm."),
    "trees": ("Cây xanh trên đường {street} bị gãy cành sau mưa bão, đè lên dây điện.",
              "Cây trước số {no} {street} có dấu hiệu mục gốc, nguy cơ ngã đổ.",
              "Đề nghị cắt tỉa cây xanh che khuất đèn tín hiệu tại {street}.",
              "Cây đổ chắn ngang đường {street}, các phương tiện không qua được."),
    "construction": ("Công trình tại số {no} {street} xây dựng vượt số tầng được cấp phép.",
                     "Vật liệu xây dựng tập kết chiếm hết vỉa hè {street}.",
                     "Công trình ở kiệt {kiet} {street} không che chắn, gây bụi cho dân cư.",
                     "Hộ dân tại {no} {street} cơi nới lấn chiếm hành lang kiệt."),
    "noise": ("Quán karaoke trên đường {street} hát lớn đến khuya, ảnh hưởng giấc ngủ.",
              "Công trình thi công ban đêm tại {street} gây tiếng ồn lớn.",
              "Loa kẹo kéo tại số {no} {street} mở quá lớn cả ngày.",
              "Quán nhậu ở kiệt {kiet} {street} ồn ào đến nửa đêm."),
    "public_order": ("Nhóm thanh niên tụ tập gây mất trật tự tại {street} vào buổi tối.",
                     "Tình trạng đua xe trái phép trên đường {street} vào ban đêm.",
                     "Buôn bán lấn chiếm lòng đường gần chợ trên đường {street}.",
                     "Đỗ xe trái phép kéo dài trước số {no} {street}, gây ùn tắc."),
}
RESOLUTIONS = {
    "roads": ("Đã vá ổ gà, hoàn trả mặt đường.", "Đã thay nắp hố ga mới.",
              "Đã sửa chữa vỉa hè, lát lại gạch."),
    "lighting": ("Đã thay bóng đèn, hệ thống chiếu sáng hoạt động bình thường.",
                 "Đã sửa chữa tủ điện và dây dẫn chiếu sáng."),
    "waste": ("Đã thu gom, vận chuyển hết rác.", "Đã bố trí thêm thùng rác, tăng tần suất "
              "thu gom."),
    "drainage": ("Đã nạo vét cống, khơi thông dòng chảy.", "Nước đã rút, đã vệ sinh mặt "
                 "đường.", "Đã lắp lại nắp hố ga."),
    "trees": ("Đã cắt tỉa cành, thu dọn cây gãy đổ.", "Đã chặt hạ cây nguy hiểm và trồng "
              "cây thay thế."),
    "construction": ("Đã kiểm tra, lập biên bản vi phạm trật tự xây dựng.",
                     "Đã yêu cầu chủ công trình che chắn, thu dọn vật liệu."),
    "noise": ("Đã nhắc nhở, yêu cầu chấm dứt gây ồn.", "Đã lập biên bản xử phạt hành vi "
              "gây ồn."),
    "public_order": ("Công an phường đã kiểm tra, giải tán.", "Đã tăng cường tuần tra khu "
                     "vực."),
}
REJECTIONS = ("Nội dung phản ánh không thuộc thẩm quyền giải quyết của địa phương.",
              "Không xác định được vị trí phản ánh.",
              "Đã kiểm tra, nội dung phản ánh không đúng thực tế.",
              "Đã chuyển đơn vị chuyên ngành xử lý theo thẩm quyền.")
PHONE_PREFIXES = ("90", "91", "93", "94", "96", "97", "98", "32", "33", "34", "35", "36", "37",
                  "38", "39", "70", "76", "77", "78", "79", "81", "82", "83", "84", "85", "86",
                  "88", "89", "56", "58", "59")
CHANNELS = ("app", "hotline", "web", "open311")


def _gauss(doy: np.ndarray, centre: float, width: float) -> np.ndarray:
    d = np.minimum(np.abs(doy - centre), 365.25 - np.abs(doy - centre))
    return np.exp(-(d / width) ** 2)


def _season(category: str, days: np.ndarray) -> np.ndarray:
    """Relative daily volume of a category (seasons, Tết, the 2020–2021 lockdowns)."""
    doy = (days - days.astype("datetime64[Y]")).astype(int).astype(float)
    w = {
        "drainage": 0.35 + 5.5 * _gauss(doy, 305, 24) + 0.6 * _gauss(doy, 255, 20),
        "trees": 1.0 + 2.0 * _gauss(doy, 300, 28) + 0.5 * _gauss(doy, 200, 30),
        "waste": 1.0 + 0.7 * _gauss(doy, 38, 12),
        "noise": 1.0 + 0.4 * _gauss(doy, 180, 40) + 0.5 * _gauss(doy, 38, 10),
        "lighting": 1.0 + 0.35 * _gauss(doy, 330, 45),
    }.get(category, np.ones(len(days)))
    lockdown = (((days >= np.datetime64("2020-04-01")) & (days < np.datetime64("2020-04-23")))
                | ((days >= np.datetime64("2021-08-01")) & (days < np.datetime64("2021-09-15"))))
    return w * np.where(lockdown, 0.55, 1.0)


def _hours(category: str) -> np.ndarray:
    day = np.array([.3, .2, .15, .15, .2, .6, 1.5, 3, 4.5, 5, 4.8, 4, 3, 3.2, 4, 4.3, 4, 3.5,
                    2.5, 2, 1.6, 1.2, .8, .5])
    if category in ("noise", "public_order"):
        day = day + np.array([3, 2.5, 1.5, 1, .5, .3, .3, .5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1.5,
                              2.5, 3.5, 4.5, 5, 5, 4.5])
    elif category == "drainage":
        day = day + 1.5
    return day / day.sum()


def _working(t: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Local times moved to the next working moment (07:30–17:00 on working days)."""
    day = np.floor(t / DAY).astype("int64").astype("datetime64[D]")
    sec = t - day.astype("int64") * DAY
    bus = np.is_busday(day, holidays=holidays())
    inside = bus & (sec >= WORK_START) & (sec < WORK_END)
    early = bus & (sec < WORK_START)
    nxt = np.where(early, day, np.busday_offset(day, np.where(bus, 1, 0), roll="forward",
                                                holidays=holidays()))
    moved = nxt.astype("int64") * DAY + WORK_START
    out = np.where(inside, t, moved)
    return out if mask is None else np.where(mask, out, t)


def _ward_points(ctx: _Context, rng: np.random.Generator, ward: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Random points (lon, lat) inside the given wards, where people live (off water, low)."""
    site, g = ctx.site, ctx.site.grid
    n = len(ward)
    lon, lat = np.zeros(n), np.zeros(n)
    todo = np.arange(n)
    for _ in range(20):
        if not len(todo):
            break
        x, y = np.empty(len(todo)), np.empty(len(todo))
        for wi in np.unique(ward[todo]):
            sel = np.flatnonzero(ward[todo] == wi)
            pix = np.flatnonzero((site.ward == wi) & (site.weight > 0))
            if not len(pix):
                pix = np.flatnonzero(site.ward == wi)
            cw = np.cumsum(site.weight[pix] + 1e-12)
            pick = pix[np.minimum(np.searchsorted(cw, rng.random(len(sel)) * cw[-1]),
                                  len(pix) - 1)]
            x[sel] = g.x0 + (pick % g.width + rng.random(len(sel))) * g.resolution
            y[sel] = g.y1 - (pick // g.width + rng.random(len(sel))) * g.resolution
        water = ctx.terrain.water(x, y)
        dry = (water["river"] > 5) & (water["lagoon"] > 5)
        lo, la = _to_lonlat(x, y)
        ok = dry.copy()
        wt = ward[todo]
        for wi in np.unique(wt):
            sel = np.flatnonzero(wt == wi)
            ok[sel] &= shapely.contains_xy(ctx.wards.geom[wi], lo[sel], la[sel])
        lon[todo[ok]], lat[todo[ok]] = lo[ok], la[ok]
        todo = todo[~ok]
    for i in todo:  # (practically never) the ward's representative point
        p = shapely.point_on_surface(ctx.wards.geom[ward[i]])
        lon[i], lat[i] = p.x, p.y
    return lon, lat


def _lognormal(rng: np.random.Generator, median_s: float, sigma: float, n: int) -> np.ndarray:
    return rng.lognormal(math.log(median_s), sigma, n)


def _incident_plan(ctx: _Context, n: int, seed: int) -> dict[str, np.ndarray]:
    """Every incident and its history as arrays (times: local seconds since 1970)."""
    rng = np.random.default_rng([seed, 31])
    wards = ctx.wards
    end = float(INCIDENTS_END.astype("datetime64[s]").astype("int64"))
    # What and when: a seasonal mix, growing every year, by time of day.
    share = np.array([CATEGORY_SHARE[c] for c in CATEGORIES])
    cat = rng.choice(len(CATEGORIES), n, p=share / share.sum())
    first = INCIDENTS_START.astype("datetime64[D]")
    span = int((INCIDENTS_END.astype("datetime64[D]") - first).astype(int)) + 1
    days = first + np.arange(span)
    base = INCIDENT_GROWTH ** (np.arange(span) / 365.25) * np.where(np.is_busday(days), 1, .8)
    t0 = np.empty(n)
    for c, name in enumerate(CATEGORIES):
        sel = np.flatnonzero(cat == c)
        w = base * _season(name, days)
        d = rng.choice(span, len(sel), p=w / w.sum())
        hour = rng.choice(24, len(sel), p=_hours(name))
        t0[sel] = (first.astype("int64") + d) * DAY + (hour + rng.random(len(sel))) * 3600
    late = t0 > end - 60
    t0[late] = end - 60 - rng.random(late.sum()) * 12 * 3600
    t0 = np.floor(t0)
    order = np.argsort(t0, kind="stable")
    t0, cat = t0[order], cat[order]
    # Where: wards by population (more reports from the urban wards).
    pop = wards.population * np.where(wards.urban, 1.6, 1.0)
    ward = rng.choice(len(wards.codes), n, p=pop / pop.sum())
    lon, lat = _ward_points(ctx, rng, ward)
    # How: priority, channel (the app takes over from the hotline over the years).
    urgent = rng.random(n) < np.array([URGENT_SHARE[c] for c in CATEGORIES])[cat]
    frac = (t0 - t0.min()) / max(t0.max() - t0.min(), 1.0)
    u = rng.random(n)
    p_app = 0.55 + 0.25 * frac
    p_hot = p_app + 0.25 - 0.13 * frac
    p_web = p_hot + 0.12 - 0.04 * frac
    channel = np.select([u < p_app, u < p_hot, u < p_web], [0, 1, 2], 3)
    # Outcome: resolved, rejected, or a duplicate of an earlier report nearby.
    u = rng.random(n)
    dup = u >= 0.96
    rej = (u >= 0.91) & ~dup
    original = np.full(n, -1)
    grp_order = np.lexsort((np.arange(n), cat, ward))
    grp = (ward * len(CATEGORIES) + cat)[grp_order]
    pos = np.arange(n)
    last_nd = np.maximum.accumulate(np.where(dup[grp_order], -1, pos))
    new_grp = np.r_[True, grp[1:] != grp[:-1]]
    grp_start = np.maximum.accumulate(np.where(new_grp, pos, 0))
    has = dup[grp_order] & (last_nd >= grp_start)
    original[grp_order[has]] = grp_order[last_nd[has]]
    rej |= dup & (original < 0)
    dup &= original >= 0
    res = ~dup & ~rej
    d_idx = np.flatnonzero(dup)
    if len(d_idx):  # a few tens of metres from the original report, in the same ward
        o = original[d_idx]
        ox, oy = transformer(4326, METRIC_EPSG).transform(lon[o], lat[o])
        r, a = rng.uniform(5, 90, len(o)), rng.uniform(0, 2 * np.pi, len(o))
        dlon, dlat = _to_lonlat(ox + r * np.cos(a), oy + r * np.sin(a))
        same = np.array([shapely.contains_xy(wards.geom[w], x, y)
                         for w, x, y in zip(ward[o], dlon, dlat, strict=True)], dtype=bool)
        lon[d_idx] = np.where(same, dlon, lon[o])
        lat[d_idx] = np.where(same, dlat, lat[o])
        ward[d_idx] = ward[o]
    # The timeline; normal reports are handled in working hours, urgent ones around the clock.
    normal = ~urgent
    day0 = (t0 // DAY).astype("int64").astype("datetime64[D]")
    k = np.array([SLA_WORKING_DAYS[c] for c in CATEGORIES])[cat]
    hours = np.array([SLA_URGENT_HOURS[c] for c in CATEGORIES])[cat]
    due = np.where(urgent, t0 + hours * 3600.0,
                   np.busday_offset(day0, k, roll="forward", holidays=holidays()).astype("int64")
                   * DAY + WORK_END)
    t = {S_RECEIVED: t0}
    t[S_ASSIGNED] = np.floor(_working(t0 + 60 + _lognormal(rng, 1200, 0.9, n), normal))
    t[S_DUPLICATE] = np.floor(_working(t0 + 60 + _lognormal(rng, 3 * 3600, 1.0, n), normal))
    t[S_IN_PROGRESS] = np.floor(_working(t[S_ASSIGNED] + 60
                                         + _lognormal(rng, 2.5 * 3600, 1.0, n), normal))
    ratio = _lognormal(rng, 0.45, 0.6, n)
    t[S_RESOLVED] = np.floor(np.maximum(
        t[S_IN_PROGRESS] + 1200, _working(t0 + ratio * (due - t0), normal)))
    t[S_REJECTED] = np.floor(_working(t[S_ASSIGNED] + 60 + _lognormal(rng, 6 * 3600, 1.0, n),
                                      normal))
    rated = res & (rng.random(n) < 0.82)
    rating1 = rng.choice(5, n, p=RATING_P) + 1
    t[S_RATED] = t[S_RESOLVED] + np.floor(60 + _lognormal(rng, 8 * 3600, 1.0, n))
    reopen = rated & (rating1 <= 2) & (rng.random(n) < 0.5)
    t[S_REOPENED] = t[S_RATED] + np.floor(60 + _lognormal(rng, 2 * 3600, 0.8, n))
    t[S_IN_PROGRESS2] = np.floor(_working(t[S_REOPENED] + 60
                                          + _lognormal(rng, 20 * 3600, 0.8, n), normal))
    t[S_RESOLVED2] = np.floor(_working(t[S_IN_PROGRESS2] + 1200
                                       + _lognormal(rng, 30 * 3600, 0.8, n), normal))
    rated2 = reopen & (rng.random(n) < 0.6)
    rating2 = rng.choice([3, 4, 5], n, p=[.25, .40, .35])
    t[S_RATED2] = t[S_RESOLVED2] + np.floor(60 + _lognormal(rng, 10 * 3600, 1.0, n))
    has_stage = {S_RECEIVED: np.ones(n, bool), S_ASSIGNED: res | rej, S_DUPLICATE: dup,
                 S_IN_PROGRESS: res, S_RESOLVED: res, S_REJECTED: rej, S_RATED: rated,
                 S_REOPENED: reopen, S_IN_PROGRESS2: reopen, S_RESOLVED2: reopen,
                 S_RATED2: rated2}
    ev_inc = np.concatenate([np.flatnonzero(has_stage[s]) for s in range(len(STAGES))])
    ev_stage = np.concatenate([np.full(has_stage[s].sum(), s, np.int8)
                               for s in range(len(STAGES))])
    ev_at = np.concatenate([t[s][has_stage[s]] for s in range(len(STAGES))])
    keep = ev_at <= end  # the future has not happened yet: recent reports are still open
    ev_inc, ev_stage, ev_at = ev_inc[keep], ev_stage[keep], ev_at[keep]
    # A backlog of older open reports, recent ones more likely, up to OPEN_SHARE of the total.
    status_ev = (ev_stage != S_RATED) & (ev_stage != S_RATED2)
    final = np.zeros(n, np.int8)
    o = np.lexsort((ev_stage[status_ev], ev_at[status_ev], ev_inc[status_ev]))
    si, ss = ev_inc[status_ev][o], ev_stage[status_ev][o]
    last = np.r_[si[1:] != si[:-1], True]
    final[si[last]] = ss[last]
    closed = np.isin(final, (S_RESOLVED, S_REJECTED, S_DUPLICATE, S_RESOLVED2))
    n_backlog = max(0, round(OPEN_SHARE * n) - int((~closed).sum()))
    stop = np.full(n, 99, np.int8)
    if n_backlog:
        age_days = (end - t0) / DAY
        key = np.where(closed, -age_days / 45.0 + rng.gumbel(size=n), -np.inf)
        pick = np.argpartition(-key, n_backlog - 1)[:n_backlog]
        stop[pick] = np.select(
            [dup[pick], rej[pick]],
            [S_RECEIVED, rng.choice([S_RECEIVED, S_ASSIGNED], len(pick), p=[.4, .6])],
            rng.choice([S_RECEIVED, S_ASSIGNED, S_IN_PROGRESS], len(pick), p=[.25, .35, .4]))
        keep = ev_stage <= stop[ev_inc]
        ev_inc, ev_stage, ev_at = ev_inc[keep], ev_stage[keep], ev_at[keep]
    o = np.lexsort((ev_stage, ev_at, ev_inc))
    ev_inc, ev_stage, ev_at = ev_inc[o], ev_stage[o], ev_at[o]
    # The resulting state of each report
    last = np.r_[ev_inc[1:] != ev_inc[:-1], True]
    updated = np.zeros(n)
    updated[ev_inc[last]] = ev_at[last]
    status_ev = (ev_stage != S_RATED) & (ev_stage != S_RATED2)
    si, ss, sa = ev_inc[status_ev], ev_stage[status_ev], ev_at[status_ev]
    last = np.r_[si[1:] != si[:-1], True]
    final = np.zeros(n, np.int8)
    final_at = np.zeros(n)
    final[si[last]], final_at[si[last]] = ss[last], sa[last]
    resolved = np.isin(final, (S_RESOLVED, S_RESOLVED2))
    rating = np.zeros(n, np.int64)
    rated_ev = ~status_ev
    ri_, rs_, ra_ = ev_inc[rated_ev], ev_stage[rated_ev], ev_at[rated_ev]
    value = np.where(rs_ == S_RATED, rating1[ri_], rating2[ri_])
    valid = resolved[ri_] & (ra_ >= final_at[ri_])
    rating[ri_[valid]] = value[valid]
    return {"t0": t0, "cat": cat, "ward": ward, "lon": lon, "lat": lat, "urgent": urgent,
            "channel": channel, "due": due, "final": final, "final_at": final_at,
            "updated": updated, "resolved": resolved, "rating": rating,
            "original": original, "rating1": rating1, "rating2": rating2,
            "ev_inc": ev_inc, "ev_stage": ev_stage, "ev_at": ev_at}


def _incident_refs(conn: psycopg.Connection, t0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Year and number of each reference 'PA-2024-0001234': numbered per year in time order,
    after those already in the table."""
    start = dict(conn.execute(
        "SELECT split_part(ref, '-', 2)::int, max(split_part(ref, '-', 3)::bigint) "
        "FROM incidents WHERE ref ~ '^PA-[0-9]{4}-[0-9]{1,12}$' GROUP BY 1").fetchall())
    year = (t0 // DAY).astype("int64").astype("datetime64[D]").astype("datetime64[Y]")
    year = year.astype(np.int64) + 1970
    first = np.searchsorted(year, year, side="left")  # t0 is sorted, so years are contiguous
    base = np.array([int(start.get(int(y), 0)) for y in range(year.min(), year.max() + 1)]
                    if len(year) else [0], dtype=np.int64)
    return year, np.arange(len(t0)) - first + 1 + base[year - year.min()]


def _reserve_ids(conn: psycopg.Connection, n: int) -> int:
    """Reserve ids ``start … start + n - 1`` of ``incidents`` (the table stays locked against
    other writers until the transaction ends); returns ``start``."""
    conn.execute("LOCK TABLE incidents IN SHARE ROW EXCLUSIVE MODE")
    seq = conn.execute("SELECT pg_get_serial_sequence('incidents', 'id')").fetchone()[0]
    top = conn.execute("SELECT GREATEST(coalesce(max(id), 0), "
                       "coalesce(pg_sequence_last_value(%s::regclass), 0)) FROM incidents",
                       (seq,)).fetchone()[0]
    conn.execute("SELECT setval(%s::regclass, %s)", (seq, top + n))
    return int(top) + 1


def generate_incidents(conn: psycopg.Connection, n: int, seed: int = 46,
                       progress: ProgressFn | None = None) -> int:
    """Generate ``n`` citizen incident reports and their ``incident_events`` history (COPY).

    Reports run from 2019-01-01 to 2026-11-25 with a yearly growing volume and a city's
    category mix (drainage peaks in the October–November flood season), at points inside the
    wards weighted by population (urban wards more), routed to the ward they fall in. About
    98 % are processed (resolved, rejected, duplicate); the rest, mostly recent, are received,
    assigned or in progress. Due dates count working days per category (urgent reports: hours),
    most resolved reports are rated (92 % with 4 or 5 stars) and a poor rating sometimes
    reopens the report. Each report's events (received, assigned, in_progress, resolved,
    rejected, duplicate, rated, reopened) agree with its timestamps and final status. Reporter
    names, phones and e-mails are synthetic. Ids are reserved up front (the table is locked
    against other writers until the transaction ends). The connection is not committed.

    Parameters
    ----------
    conn : psycopg.Connection
        An open connection to a database with the wards loaded.
    n : int
        Number of reports (1,000,000 works; rows are streamed in chunks).
    seed : int
        Random seed: the same seed gives the same reports and events.
    progress : callable, optional
        Called with the number of reports written (with their events) since its last call.

    Returns
    -------
    int
        The number of reports written.
    """
    if n <= 0:
        return 0
    ctx = _context(conn, seed)
    plan = _incident_plan(ctx, n, seed)
    ref_year, ref_seq = _incident_refs(conn, plan["t0"])
    first_id = _reserve_ids(conn, n)
    # Where in the street grid: a street name coherent with the parcels' addresses there.
    rng = np.random.default_rng([seed, 32])
    mx, my = transformer(4326, METRIC_EPSG).transform(plan["lon"], plan["lat"])
    gu, gv = _metric_to_grid(ctx, mx, my)
    street = (_hash(np.rint(gu / CELL_M).astype(np.int64), np.rint(gv / CELL_M).astype(np.int64),
                    rng.integers(0, 5, n)) % np.uint64(len(STREETS))).astype(np.int64)
    written = 0
    chunk = 10_000  # reports per COPY of reports then events (and per progress step)
    for c, lo in enumerate(range(0, n, chunk)):
        hi = min(n, lo + chunk)
        _copy_incident_chunk(conn, ctx, plan, np.random.default_rng([seed, 33, c]), lo, hi,
                             first_id, ref_year, ref_seq, street[lo:hi])
        written += hi - lo
        if progress:
            progress(hi - lo)
    return written


def _copy_incident_chunk(conn: psycopg.Connection, ctx: _Context, plan: dict[str, np.ndarray],
                         rng: np.random.Generator, lo: int, hi: int, first_id: int,
                         ref_year: np.ndarray, ref_seq: np.ndarray, street: np.ndarray) -> None:
    """COPY the reports ``lo:hi`` and then their events."""
    wards = ctx.wards
    m = hi - lo
    sl = slice(lo, hi)

    def ref(i: int) -> str:
        return f"PA-{ref_year[i]}-{ref_seq[i]:07d}"

    # Reporters
    names, stems, _ = _people(rng, m)
    ch = plan["channel"][sl]
    u = rng.random((3, m))
    phones = [f"0{PHONE_PREFIXES[a]}{b:07d}" for a, b in zip(
        rng.integers(0, len(PHONE_PREFIXES), m).tolist(), rng.integers(0, 10**7, m).tolist(),
        strict=True)]
    has_phone = np.select([ch <= 1, ch == 2], [True, u[0] < .6], u[0] < .5)
    has_email = np.select([ch == 1, ch == 2, ch == 3], [False, True, u[1] < .7], u[1] < .35)
    has_email |= ~has_phone  # some way to reach the reporter
    domains = np.array(["gmail.com", "gmail.com", "gmail.com", "yahoo.com", "outlook.com"])
    digits = np.where(u[2] < .6, rng.integers(1, 99, m).astype(str), "")
    emails = [f"{s}{d}@{x}" for s, d, x in zip(
        stems.tolist(), digits.tolist(), domains[rng.integers(0, len(domains), m)].tolist(),
        strict=True)]
    phones = [p if ok else None for p, ok in zip(phones, has_phone.tolist(), strict=True)]
    emails = [e if ok else None for e, ok in zip(emails, has_email.tolist(), strict=True)]
    # Texts
    street2 = ((street + rng.integers(1, len(STREETS), m)) % len(STREETS)).tolist()
    addr_form = rng.choice(4, m, p=[.5, .25, .1, .15]).tolist()
    number = rng.integers(1, 400, m).tolist()
    kiet = rng.integers(1, 150, m).tolist()
    tmpl = rng.integers(0, 1_000_000, m).tolist()
    depth = (rng.integers(2, 12, m) * 10).tolist()
    operators = rng.integers(1, 25, m).tolist()
    inspectors = rng.integers(1, 7, m).tolist()
    partner = rng.integers(0, 3, m).tolist()
    pick = rng.integers(0, 1_000_000, m).tolist()
    points = shapely.to_wkb(shapely.set_srid(shapely.points(plan["lon"][sl], plan["lat"][sl]),
                                             4326), hex=True, include_srid=True).tolist()
    created = _local_text(plan["t0"][sl])
    due = _local_text(plan["due"][sl])
    updated = _local_text(plan["updated"][sl])
    resolved_at = _local_text(np.where(plan["resolved"][sl], plan["final_at"][sl], np.nan))
    cat = plan["cat"][sl].tolist()
    ward = plan["ward"][sl].tolist()
    final = plan["final"][sl].tolist()
    urgent = plan["urgent"][sl].tolist()
    rating = plan["rating"][sl].tolist()
    chl = ch.tolist()
    streets = street.tolist()

    def incident_rows() -> Iterator[tuple]:
        for j in range(m):
            c = CATEGORIES[cat[j]]
            wi = ward[j]
            st = STREETS[streets[j]]
            if not wards.urban[wi]:
                address = f"Thôn {kiet[j] % 12 + 1}, {wards.names[wi]}"
            else:
                address = (f"{number[j]} {st}", f"Kiệt {kiet[j]} {st}",
                           f"Ngã tư {st} – {STREETS[street2[j]]}",
                           f"Đường {st}")[addr_form[j]] + f", {wards.names[wi]}"
            texts = DESCRIPTIONS[c]
            desc = texts[tmpl[j] % len(texts)].format(street=st, no=number[j], kiet=kiet[j],
                                                      depth=depth[j])
            yield (first_id + lo + j, ref(lo + j), c, desc, STAGES[final[j]][2],
                   "urgent" if urgent[j] else "normal", CHANNELS[chl[j]], address,
                   wards.codes[wi], names[j], phones[j], emails[j], due[j], resolved_at[j],
                   rating[j] or None, SOURCE, created[j], updated[j], points[j])

    copy_rows(conn, "incidents", INCIDENT_COLUMNS, incident_rows())
    e_lo, e_hi = np.searchsorted(plan["ev_inc"], [lo, hi])
    ev_at = _local_text(plan["ev_at"][e_lo:e_hi])
    ev_inc = (plan["ev_inc"][e_lo:e_hi] - lo).tolist()
    ev_stage = plan["ev_stage"][e_lo:e_hi].tolist()
    original = plan["original"][sl].tolist()
    rating1 = plan["rating1"][sl].tolist()
    rating2 = plan["rating2"][sl].tolist()
    partners = ("zalo-hue", "vnpt-smartcity", "hue-tourism")

    def event_rows() -> Iterator[tuple]:
        for at, j, s in zip(ev_at, ev_inc, ev_stage, strict=True):
            kind, before, after = STAGES[s]
            wi = ward[j]
            data = "{}"
            note = None
            if s == S_RECEIVED:
                c = chl[j]
                actor = (f"citizen:{CHANNELS[c]}" if c in (0, 2) else
                         f"operator:hotline-{operators[j]:02d}" if c == 1 else
                         f"open311:{partners[partner[j]]}")
                data = f'{{"channel": "{CHANNELS[c]}"}}'
            elif s == S_ASSIGNED:
                actor = f"ioc:operator-{operators[j]:02d}"
                note = f"Chuyển {wards.names[wi]} xử lý."
                data = f'{{"ward_code": "{wards.codes[wi]}"}}'
            elif s == S_DUPLICATE:
                actor = f"ioc:operator-{operators[j]:02d}"
                r = ref(original[j])
                note = f"Trùng với phản ánh {r}."
                data = f'{{"duplicate_of": "{r}"}}'
            elif s == S_REOPENED:
                actor = "system"
                note = f"Người phản ánh chưa hài lòng ({rating1[j]}/5 sao), mở lại phản ánh."
            elif s in (S_RATED, S_RATED2):
                actor = "citizen"
                data = f'{{"rating": {rating1[j] if s == S_RATED else rating2[j]}}}'
            else:
                actor = f"ward-{wards.codes[wi]}:inspector-{inspectors[j]:02d}"
                if s in (S_IN_PROGRESS, S_IN_PROGRESS2):
                    note = "Đã tiếp nhận, cử cán bộ kiểm tra hiện trường."
                elif s == S_REJECTED:
                    note = REJECTIONS[pick[j] % len(REJECTIONS)]
                else:
                    texts = RESOLUTIONS[CATEGORIES[cat[j]]]
                    note = texts[(pick[j] + s) % len(texts)]
            yield (first_id + lo + j, at, actor, kind, before, after, note, data)

    copy_rows(conn, "incident_events", EVENT_COLUMNS, event_rows())
