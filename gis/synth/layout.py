"""The parcel layout: superblock cells of the street grid in build-up order, subdivided into
blocks and parcels (polygons in EPSG:4326 that share their vertices), off water and mountains
and inside their ward."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import shapely

from gis.raster import to_metric
from gis.synth.context import (
    CELL_M,
    _Context,
    _grid_to_metric,
    _hash,
    _metric_to_grid,
    _rotate,
    _to_lonlat,
)
from gis.synth.names import STREETS
from layers.parcels import LAND_USE

# The Imperial City (Hoàng Thành) protection zone.
IMPERIAL_CITY_LONLAT = (107.5781, 16.4690)
IMPERIAL_CITY_HALF_M = 300.0
JITTER_DEG = 4.0  # standard deviation of the turn of outer cells
HILL_M = 12.0  # above this, only cemeteries and perennial crops
LU_CODES = tuple(LAND_USE)
LU = {c: i for i, c in enumerate(LU_CODES)}
RES, GARDEN, INST, AGRI, HILL, EMPTY = range(6)
# Institutional blocks: land use and probability, in wards (phường) and communes (xã).
INST_URBAN = (("DGD", .24), ("DYT", .08), ("TON", .17), ("DVH", .11), ("DKV", .14),
              ("SKC", .08), ("TMD", .15), ("DGT", .03))
INST_RURAL = (("DGD", .28), ("DYT", .10), ("TON", .20), ("DVH", .14), ("DKV", .05),
              ("SKC", .10), ("NTD", .13))


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
