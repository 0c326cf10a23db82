"""Calendar and time helpers: the period of the data, Vietnamese public holidays, working days
and hours, and local timestamps as text."""

from __future__ import annotations

import numpy as np

# Working hours and public holidays: the administration's calendar, shared with the incident
# service's due dates.
from gis.workdays import WORK_END, WORK_START, holidays

# Incidents run from START to END (local time, UTC+07:00, no daylight saving).
INCIDENTS_START = np.datetime64("2019-01-01T00:00:00")
INCIDENTS_END = np.datetime64("2026-11-25T12:00:00")
DAY = 86400


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
    """Local (UTC+07:00) seconds since 1970-01-01 → ISO 8601 text with ``+07``; NaN → None.

    >>> _local_text(np.array([86400.0 + 3600, np.nan]))
    ['1970-01-02T01:00:00+07', None]
    """
    t = np.asarray(t, dtype=float)
    valid = np.isfinite(t)
    loc = np.where(valid, t, 0).astype("int64").astype("datetime64[s]")
    text = np.char.add(np.datetime_as_string(loc, unit="s"), "+07").astype(object)
    text[~valid] = None
    return text.tolist()
