"""Land parcels: cadastral map sheets and parcel numbers, land use, zoning, owners and
addresses of the laid-out lots, written to ``land_parcels``."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import psycopg
import shapely

from gis.bulk import ProgressFn, copy_rows
from gis.errors import InvalidParameter
from gis.raster import to_metric
from gis.synth.context import SOURCE, _Context, _context, _Wards
from gis.synth.layout import AGRI, HILL, LU_CODES, _parcel_batches
from gis.synth.names import PAGODAS, PARISHES, PLACES, SECTORS, STREETS, _people

PARCEL_COLUMNS = ("parcel_no", "map_sheet_no", "land_use", "area_m2", "zoning", "owner_type",
                  "owner_name", "ward_code", "address", "source", "geom")
SHEET_M = {True: 500.0, False: 1000.0}  # cadastral map sheet: 1:1000 in wards, 1:2000 outside
# The Citadel (Kinh thành) protection zone.
CITADEL_LONLAT = (107.5775, 16.4705)
CITADEL_RADIUS_M = 1100.0


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
        raise InvalidParameter(f"Huế has room for {n - left:,} synthetic parcels, not {n:,}")


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
