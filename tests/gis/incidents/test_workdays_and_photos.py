"""Due dates counted in working days (weekends and Vietnamese public holidays skipped, checked
day by day), the transition table, and photo processing (sniffing, EXIF/GPS stripping)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from PIL import Image

from gis.errors import Conflict, PayloadTooLarge, UnsupportedMediaType
from gis.incidents import STATUSES, TRANSITIONS, photos
from gis.incidents.workflow import check_transition
from gis.workdays import LOCAL_TZ, SLA_URGENT_HOURS, SLA_WORKING_DAYS, due_at

# Holidays written out by hand for 2026 (Tết 17 Feb: 15–21 Feb; Hùng Kings 26 Apr; 30/4,
# 1/5; 2/9 and 3/9; New Year).
HOLIDAYS_2026 = {dt.date(2026, 1, 1), *(dt.date(2026, 2, d) for d in range(15, 22)),
                 dt.date(2026, 4, 26), dt.date(2026, 4, 30), dt.date(2026, 5, 1),
                 dt.date(2026, 9, 2), dt.date(2026, 9, 3)}


def _count_forward(day: dt.date, n: int) -> dt.date:
    def working(d: dt.date) -> bool:
        return d.weekday() < 5 and d not in HOLIDAYS_2026
    while not working(day):
        day += dt.timedelta(days=1)
    while n:
        day += dt.timedelta(days=1)
        n -= working(day)
    return day


@pytest.mark.parametrize("category", sorted(SLA_WORKING_DAYS))
def test_due_dates_skip_weekends_and_holidays(category: str) -> None:
    start = dt.datetime(2026, 1, 1, 10, tzinfo=LOCAL_TZ)
    for k in range(0, 330, 3):
        created = start + dt.timedelta(days=k)
        due = due_at(created, category)
        expected = _count_forward(created.date(), SLA_WORKING_DAYS[category])
        assert due == dt.datetime.combine(expected, dt.time(17), LOCAL_TZ), created
    urgent = due_at(start, category, urgent=True)
    assert urgent - start == dt.timedelta(hours=SLA_URGENT_HOURS[category])


def test_tet_and_national_day_examples() -> None:
    # Filed Friday 13 Feb 2026, before the Tết break (15–21 Feb): Mon 23, Tue 24, Wed 25.
    due = due_at(dt.datetime(2026, 2, 13, 9, tzinfo=LOCAL_TZ), "drainage")
    assert due.date() == dt.date(2026, 2, 25)
    # Filed at 23:30 UTC on 1 Sep = 06:30 local on 2 Sep (holiday): counts from 4 Sep.
    due = due_at(dt.datetime(2026, 9, 1, 23, 30, tzinfo=dt.UTC), "waste")
    assert due.date() == dt.date(2026, 9, 8)


def test_transition_table() -> None:
    legal = {(a, b) for a, bs in TRANSITIONS.items() for b in bs}
    assert ("received", "assigned") in legal and ("resolved", "reopened") in legal
    for a in STATUSES:
        for b in STATUSES:
            if (a, b) in legal:
                check_transition(a, b)
            else:
                with pytest.raises(Conflict):
                    check_transition(a, b)


def _jpeg(size=(1200, 900), gps=True) -> bytes:
    exif = Image.Exif()
    exif[0x0110] = "Phone 12"
    exif[0x0112] = 6  # rotated: stored copies are turned upright
    if gps:
        exif.get_ifd(0x8825)[2] = (16.0, 28.0, 5.0)
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def test_processing_strips_metadata_and_makes_sizes() -> None:
    p = photos.process(_jpeg(), "image/jpeg")
    assert p.meta["gps"] is True and p.meta["model"] == "Phone 12"
    assert (p.width, p.height) == (900, 1200)  # EXIF orientation applied
    for size, longest in photos.SIZES.items():
        img = Image.open(io.BytesIO(p.files[size]))
        assert img.format == "JPEG" and max(img.size) == min(longest, 1200)
        assert len(img.getexif()) == 0 and b"Phone 12" not in p.files[size]
    assert photos.process(_jpeg(gps=False), None).meta["gps"] is False


def test_processing_refuses_fakes_and_giants() -> None:
    with pytest.raises(UnsupportedMediaType):
        photos.process(b"GIF89a" + b"\0" * 100, "image/gif")
    with pytest.raises(UnsupportedMediaType):
        photos.process(_jpeg()[:500], "image/jpeg")  # truncated
    with pytest.raises(UnsupportedMediaType):
        photos.process(_jpeg(), "image/png")  # not what it claims
    with pytest.raises(PayloadTooLarge):
        photos.process(b"\0" * (photos.MAX_BYTES + 1), "image/jpeg")
    buf = io.BytesIO()
    Image.new("L", (9000, 5000)).save(buf, "PNG")
    with pytest.raises(PayloadTooLarge):
        photos.process(buf.getvalue(), "image/png")
