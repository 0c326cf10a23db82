"""The working calendar of Huế's administration: Vietnamese public holidays, working days and
hours, and the service-level deadlines of citizen reports per category.

Shared by the incident service (due dates) and the demo generator (its history).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np

# Local time of Huế (UTC+07:00, no daylight saving).
LOCAL_TZ = dt.timezone(dt.timedelta(hours=7), "ICT")
# Working hours (seconds after local midnight).
WORK_START, WORK_END = 7.5 * 3600, 17.0 * 3600
# Public holidays (Tết Nguyên đán, Hùng Kings, 30/4–1/5, 2/9, New Year), for working days.
_TET = ("2019-02-05", "2020-01-25", "2021-02-12", "2022-02-01", "2023-01-22", "2024-02-10",
        "2025-01-29", "2026-02-17", "2027-02-06")
_HUNG_KINGS = ("2019-04-14", "2020-04-02", "2021-04-21", "2022-04-10", "2023-04-29",
               "2024-04-18", "2025-04-07", "2026-04-26", "2027-04-16")
FIRST_YEAR, LAST_YEAR = 2019, 2027  # extend the tables above for later years

# Working days to process a normal report, per category; hours for an urgent one.
SLA_WORKING_DAYS = {"roads": 5, "lighting": 3, "waste": 2, "drainage": 3, "trees": 3,
                    "construction": 7, "noise": 2, "public_order": 2}
SLA_URGENT_HOURS = {"roads": 8, "lighting": 8, "waste": 6, "drainage": 4, "trees": 4,
                    "construction": 24, "noise": 4, "public_order": 2}


@lru_cache(maxsize=1)
def holidays() -> np.ndarray:
    """Vietnamese public holidays 2019–2027 (``datetime64[D]``), used for working days.

    Example
    -------
    >>> bool(np.datetime64("2026-09-02") in holidays())
    True
    """
    days = []
    for y in range(FIRST_YEAR, LAST_YEAR + 1):
        days += [f"{y}-01-01", f"{y}-04-30", f"{y}-05-01", f"{y}-09-02"]
        if y >= 2021:
            days.append(f"{y}-09-01" if y in (2021, 2022, 2024, 2025, 2027)
                        else f"{y}-09-03")
    tet = np.array(_TET, dtype="datetime64[D]")
    out = np.concatenate([np.array(days, dtype="datetime64[D]"),
                          np.array(_HUNG_KINGS, dtype="datetime64[D]"),
                          (tet[:, None] + np.arange(-2, 5)).ravel()])
    return np.unique(out)


def is_working_day(day: dt.date) -> bool:
    """Whether ``day`` is a working day (Monday–Friday, not a public holiday).

    >>> is_working_day(dt.date(2026, 9, 2)), is_working_day(dt.date(2026, 9, 4))
    (False, True)
    """
    return bool(np.is_busday(np.datetime64(day, "D"), holidays=holidays()))


def add_working_days(day: dt.date, n: int) -> dt.date:
    """The working day ``n`` working days after ``day`` (a non-working ``day`` counts from the
    next working day).

    >>> add_working_days(dt.date(2026, 11, 27), 2)  # Friday + 2 → Tuesday
    datetime.date(2026, 12, 1)
    """
    out = np.busday_offset(np.datetime64(day, "D"), n, roll="forward", holidays=holidays())
    return out.astype(dt.date)


def due_at(created: dt.datetime, category: str, urgent: bool = False) -> dt.datetime:
    """When a report filed at ``created`` must be processed: urgent ones within the category's
    hours around the clock; normal ones by 17:00 local time after the category's working days.

    >>> t = dt.datetime(2026, 11, 27, 9, 0, tzinfo=LOCAL_TZ)  # a Friday
    >>> due_at(t, "waste").isoformat()
    '2026-12-01T17:00:00+07:00'
    >>> due_at(t, "waste", urgent=True).isoformat()
    '2026-11-27T15:00:00+07:00'
    """
    if urgent:
        return created + dt.timedelta(hours=SLA_URGENT_HOURS[category])
    local = created.astimezone(LOCAL_TZ)
    day = add_working_days(local.date(), SLA_WORKING_DAYS[category])
    return dt.datetime.combine(day, dt.time(0), LOCAL_TZ) + dt.timedelta(seconds=WORK_END)
