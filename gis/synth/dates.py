"""Calendar and time helpers: the period of the data, Vietnamese public holidays, working days
and hours, and local timestamps as text."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# Incidents run from START to END (local time, UTC+07:00, no daylight saving).
INCIDENTS_START = np.datetime64("2019-01-01T00:00:00")
INCIDENTS_END = np.datetime64("2026-11-25T12:00:00")
# Working hours (seconds after local midnight) and seconds per day.
WORK_START, WORK_END = 7.5 * 3600, 17.0 * 3600
DAY = 86400
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


def _local_text(t: np.ndarray) -> list:
    """Local (UTC+07:00) seconds since 1970-01-01 → ISO 8601 text with ``+07``; NaN → None."""
    t = np.asarray(t, dtype=float)
    valid = np.isfinite(t)
    loc = np.where(valid, t, 0).astype("int64").astype("datetime64[s]")
    text = np.char.add(np.datetime_as_string(loc, unit="s"), "+07").astype(object)
    text[~valid] = None
    return text.tolist()
