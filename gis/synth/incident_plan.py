"""The plan of the citizen incident reports, as arrays: category, time (seasons, hours,
growth), place, priority, channel, duplicates, and the timeline of events with SLAs,
backlog and ratings."""

from __future__ import annotations

import math

import numpy as np
import shapely

from gis.raster import METRIC_EPSG, transformer
from gis.synth.context import _Context, _to_lonlat
from gis.synth.dates import DAY, INCIDENTS_END, INCIDENTS_START, WORK_END, _working, holidays
from gis.workdays import SLA_URGENT_HOURS, SLA_WORKING_DAYS
from layers.incidents import INCIDENT_CATEGORIES

CATEGORIES = tuple(INCIDENT_CATEGORIES)
CATEGORY_SHARE = {"roads": .17, "lighting": .11, "waste": .21, "drainage": .13, "trees": .09,
                  "construction": .10, "noise": .08, "public_order": .11}
URGENT_SHARE = {"roads": .05, "lighting": .03, "waste": .02, "drainage": .10, "trees": .08,
                "construction": .02, "noise": .02, "public_order": .08}
OPEN_SHARE = 0.02  # reports not processed yet (received, assigned, in progress)
INCIDENT_GROWTH = 1.3  # yearly growth of the volume of reports
RATING_P = (0.015, 0.025, 0.04, 0.30, 0.62)  # 1–5 stars: 92 % satisfied (4 or 5)
# Event stages: (kind, from_status, to_status); the index orders events of equal time.
STAGES = (("received", None, "received"), ("assigned", "received", "assigned"),
          ("duplicate", "received", "duplicate"), ("in_progress", "assigned", "in_progress"),
          ("resolved", "in_progress", "resolved"), ("rejected", "assigned", "rejected"),
          ("rated", None, None), ("reopened", "resolved", "reopened"),
          ("in_progress", "reopened", "in_progress"), ("resolved", "in_progress", "resolved"),
          ("rated", None, None))
(S_RECEIVED, S_ASSIGNED, S_DUPLICATE, S_IN_PROGRESS, S_RESOLVED, S_REJECTED, S_RATED,
 S_REOPENED, S_IN_PROGRESS2, S_RESOLVED2, S_RATED2) = range(len(STAGES))


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
