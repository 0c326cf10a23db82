"""Citizen incident reports: intake, ward routing, the inspector workflow, SLA due dates,
photos, the live feed and the dashboard figures.

Modules: :mod:`.routing` (point → ward), :mod:`.events` (the append-only history and its
NOTIFY), :mod:`.intake` (new reports, idempotency, duplicate suggestions), :mod:`.workflow`
(state machine, assignment, moves, merges, ratings, overdue lists), :mod:`.photos`
(validation, EXIF stripping, storage), :mod:`.feed` (LISTEN/NOTIFY for Server-Sent Events),
:mod:`.stats` (figures, exact medians and hexagon heatmaps from rollups).
"""

from __future__ import annotations

import re

from gis.errors import InvalidParameter
from layers.incidents import INCIDENT_CATEGORIES, INCIDENT_STATUSES

CATEGORIES: tuple[str, ...] = tuple(INCIDENT_CATEGORIES)
STATUSES: tuple[str, ...] = INCIDENT_STATUSES
CHANNELS: tuple[str, ...] = ("app", "hotline", "web", "open311")
PRIORITIES: tuple[str, ...] = ("normal", "urgent")
PROCESSED: tuple[str, ...] = ("resolved", "rejected", "duplicate")
OPEN: tuple[str, ...] = ("received", "assigned", "in_progress", "reopened")

# The legal status changes (anything else is a 409).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "received": ("assigned", "rejected", "duplicate"),
    "assigned": ("in_progress", "rejected", "duplicate"),
    "in_progress": ("resolved", "rejected", "duplicate"),
    "resolved": ("reopened",),
    "rejected": ("reopened",),
    "duplicate": ("reopened",),
    "reopened": ("assigned", "in_progress", "rejected", "duplicate"),
}
# A rating at or below this reopens a resolved report.
POOR_RATING = 2
# Duplicate suggestions: same category, this close in metres and in days.
DUPLICATE_RADIUS_M = 250.0
DUPLICATE_DAYS = 14

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_text(name: str, value: str | None) -> str | None:
    r"""Refuse control characters (NUL and the like: PostgreSQL and XML cannot carry them).

    >>> check_text("description", "Ổ gà\ntrên đường")
    'Ổ gà\ntrên đường'
    >>> check_text("note", "a\x00b")
    Traceback (most recent call last):
    ...
    gis.errors.InvalidParameter: note: control characters are not allowed
    """
    if value is not None and _CONTROL.search(value):
        raise InvalidParameter(f"{name}: control characters are not allowed")
    return value
