"""Construction permits and violations: building footprints inset into parcels, their
status, dates, numbers and inspector notes, written to ``construction``."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import psycopg
import shapely

from gis.bulk import ProgressFn, copy_rows
from gis.errors import InvalidParameter
from gis.raster import METRIC_EPSG, metric_geometry, transformer
from gis.synth.context import SOURCE, _context
from gis.synth.dates import INCIDENTS_END, _sample_days
from gis.synth.names import _people
from gis.synth.parcels import _Numbering, _parcel_rows

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
        raise InvalidParameter(f"not enough room for {n:,} construction records")
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
