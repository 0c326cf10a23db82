"""Parsing the query parameters of OGC API Features requests into typed, validated values.

Everything here raises :class:`gis.errors.InvalidParameter` (400) or one of its subclasses on
bad input, so the API never turns a malformed request into a 500.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from gis.crs import CRS84_URI, EPSG_URI, parse_bbox, parse_crs
from gis.errors import InvalidBBox, InvalidParameter, UnknownCRS
from layers import Field, Layer

# CRSs offered by every collection (OGC API Features Part 2), CRS84 first (the default).
API_SRIDS = (4326, 3857, 9214, 3405)
INT64 = 2**63


@dataclass(frozen=True)
class ApiCRS:
    """A CRS of the API: its SRID and whether coordinates are latitude first (EPSG:4326).

    >>> parse_api_crs("EPSG:4326").lat_first, parse_api_crs("OGC:CRS84").lat_first
    (True, False)
    """

    srid: int
    lat_first: bool = False

    @property
    def uri(self) -> str:
        if self.srid == 4326 and not self.lat_first:
            return CRS84_URI
        return EPSG_URI.format(self.srid)

    @property
    def decimals(self) -> int:
        """Coordinate decimals in output: ~1 cm in degrees, 1 mm in projected metres."""
        return 7 if self.srid == 4326 else 3


CRS84 = ApiCRS(4326)


def api_crs_list() -> list[str]:
    """URIs of every CRS a collection may be requested in (the collection's ``crs`` list)."""
    return [CRS84_URI] + [EPSG_URI.format(s) for s in API_SRIDS]


def parse_api_crs(value: str | None) -> ApiCRS:
    """A ``crs``/``bbox-crs``/``filter-crs`` value; CRS84 when absent; 400 when unsupported.

    >>> parse_api_crs("http://www.opengis.net/def/crs/EPSG/0/9214")
    ApiCRS(srid=9214, lat_first=False)
    >>> parse_api_crs("EPSG:32648")
    Traceback (most recent call last):
    ...
    gis.errors.UnknownCRS: CRS EPSG:32648 is not offered by this API; use one of ...
    """
    if value is None:
        return CRS84
    srid = parse_crs(value)  # UnknownCRS for anything that is not a known reference
    lowered = value.strip().lower()
    is_crs84 = "crs84" in lowered
    if srid not in API_SRIDS:
        raise UnknownCRS(f"CRS EPSG:{srid} is not offered by this API; use one of "
                         + ", ".join(api_crs_list()), value=value)
    return ApiCRS(srid, lat_first=srid == 4326 and not is_crs84)


def parse_bbox_param(value: str, crs: ApiCRS = CRS84) -> tuple[float, float, float, float]:
    """``bbox`` with 4 or 6 numbers (heights dropped), as (minx, miny, maxx, maxy) in the
    CRS's x/y order (EPSG:4326 input, latitude first, is swapped to lon/lat).

    >>> parse_bbox_param("107.5,16.4,0,107.6,16.5,30")
    (107.5, 16.4, 107.6, 16.5)
    >>> parse_bbox_param("16.4,107.5,16.5,107.6", parse_api_crs("EPSG:4326"))
    (107.5, 16.4, 107.6, 16.5)
    """
    parts = [p.strip() for p in value.split(",")]
    if len(parts) == 6:
        parts = [parts[0], parts[1], parts[3], parts[4]]
    elif len(parts) != 4:
        raise InvalidBBox(f"bbox must have 4 or 6 numbers, got {len(parts)}: {value!r}")
    w, s, e, n = parse_bbox(parts)
    if crs.lat_first:
        w, s, e, n = s, w, n, e
    if crs.srid == 4326 and not (-180 <= w and e <= 180 and -90 <= s and n <= 90):
        raise InvalidBBox(f"bbox {value!r} is outside the range of longitudes and latitudes")
    if crs.srid != 4326 and max(abs(v) for v in (w, s, e, n)) > 2.1e7:
        raise InvalidBBox(f"bbox {value!r} is outside the area of EPSG:{crs.srid}")
    return (w, s, e, n)


# ------------------------------------------------------------------------- times and dates
@dataclass(frozen=True)
class TimeRange:
    """A closed or half-open range of instants; ``None`` bounds are open (``..``).

    An instant is ``lo == hi``; a calendar date is the half-open day ``[d, d + 1 day)``.
    """

    lo: datetime | None
    hi: datetime | None
    hi_inclusive: bool = True

    @property
    def is_instant(self) -> bool:
        return self.lo is not None and self.lo == self.hi and self.hi_inclusive


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def day_start(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def time_range(value: date | datetime | None, end: date | datetime | None = None, *,
               interval: bool = False) -> TimeRange:
    """The :class:`TimeRange` of an instant/date, or of the interval ``value``..``end``."""
    if not interval:
        if isinstance(value, datetime):
            t = _aware(value)
            return TimeRange(t, t)
        if isinstance(value, date):
            return TimeRange(day_start(value), day_start(value) + timedelta(days=1), False)
        raise InvalidParameter(f"not a date or timestamp: {value!r}")
    lo = _aware(value) if isinstance(value, datetime) else (
        day_start(value) if isinstance(value, date) else None)
    if isinstance(end, datetime):
        hi, inclusive = _aware(end), True
    elif isinstance(end, date):
        hi, inclusive = day_start(end) + timedelta(days=1), False
    else:
        hi, inclusive = None, True
    if lo is not None and hi is not None and lo > hi:
        raise InvalidParameter("the interval ends before it starts")
    return TimeRange(lo, hi, inclusive)


def parse_instant(text: str) -> date | datetime:
    """An RFC 3339 timestamp or a date.

    >>> parse_instant("2025-07-01")
    datetime.date(2025, 7, 1)
    >>> parse_instant("2025-07-01T08:00:00Z").isoformat()
    '2025-07-01T08:00:00+00:00'
    """
    t = text.strip()
    try:
        if len(t) == 10:
            return date.fromisoformat(t)
        if "T" not in t.upper():
            raise ValueError(t)
        return _aware(datetime.fromisoformat(t.replace("z", "Z")))
    except ValueError:
        raise InvalidParameter(f"not an RFC 3339 date or timestamp: {text!r}") from None


def parse_datetime_param(value: str) -> TimeRange:
    """The ``datetime`` parameter: an instant, or an interval ``a/b`` with open ends ``..``.

    >>> r = parse_datetime_param("2025-01-01/..")
    >>> r.lo.isoformat(), r.hi
    ('2025-01-01T00:00:00+00:00', None)
    >>> parse_datetime_param("../..")
    Traceback (most recent call last):
    ...
    gis.errors.InvalidParameter: datetime '../..': at most one end of an interval may be open
    """
    parts = value.split("/")
    if len(parts) == 1:
        return time_range(parse_instant(parts[0]))
    if len(parts) != 2:
        raise InvalidParameter(f"datetime {value!r} must be an instant or 'start/end'")
    ends = [None if p.strip() in ("", "..") else parse_instant(p) for p in parts]
    if ends[0] is None and ends[1] is None:
        raise InvalidParameter(f"datetime {value!r}: at most one end of an interval may be open")
    return time_range(ends[0], ends[1], interval=True)


# --------------------------------------------------------------------- fields and values
def field_named(layer: Layer, name: str, visible: list[str], what: str) -> Field:
    """The field ``name`` if the caller may see it; private and unknown fields get the same
    400, so a request cannot find out which hidden fields exist."""
    if name not in visible:
        raise InvalidParameter(f"unknown {what} {name!r} in collection {layer.id!r}; known: "
                               + ", ".join(visible))
    return layer.field(name)


def parse_properties(layer: Layer, value: str, visible: list[str]) -> tuple[str, ...]:
    """``properties=a,b``: the chosen visible fields, in the catalog's order (empty: none).

    >>> from layers import VECTOR_LAYERS
    >>> parse_properties(VECTOR_LAYERS['parcels'], 'land_use,parcel_no', ['parcel_no', 'land_use'])
    ('parcel_no', 'land_use')
    """
    names = {p.strip() for p in value.split(",") if p.strip()}
    for name in names:
        field_named(layer, name, visible, "property")
    return tuple(f for f in visible if f in names)


def parse_sortby(layer: Layer, value: str, visible: list[str]) -> tuple[tuple[str, bool], ...]:
    """``sortby=+a,-b`` → ``(('a', False), ('b', True))`` (name, descending).

    >>> from layers import VECTOR_LAYERS
    >>> parse_sortby(VECTOR_LAYERS['parcels'], '-area_m2,land_use', ['area_m2', 'land_use'])
    (('area_m2', True), ('land_use', False))
    """
    keys: list[tuple[str, bool]] = []
    for raw in value.split(","):
        item = raw.strip()
        if not item:
            raise InvalidParameter(f"sortby {value!r} has an empty key")
        desc = item.startswith("-")
        name = item.lstrip("+-").strip()
        if " " in name:  # "+a" arrives as " a" when the plus was not URL-encoded
            raise InvalidParameter(f"sortby key {item!r} is not a property name")
        field_named(layer, name, visible, "sortby property")
        if any(k == name for k, _ in keys):
            raise InvalidParameter(f"sortby names {name!r} twice")
        keys.append((name, desc))
    return tuple(keys)


def coerce(field: Field, value: object) -> object:
    """``value`` as the Python type asyncpg binds for ``field`` (400 when it cannot be).

    >>> from layers import Field
    >>> coerce(Field('floors', 'int'), '3'), coerce(Field('area', 'float'), 2)
    (3, 2.0)
    >>> coerce(Field('floors', 'int'), 'three')
    Traceback (most recent call last):
    ...
    gis.errors.InvalidParameter: property 'floors' needs an integer, got 'three'
    """
    want = {"text": "a string", "int": "an integer", "float": "a number", "bool": "true/false",
            "date": "a date", "datetime": "a timestamp"}[field.type]
    bad = InvalidParameter(f"property {field.name!r} needs {want}, got {value!r}")
    try:
        if field.type == "text":
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise bad
            return str(value)
        if field.type == "int":
            if isinstance(value, bool):
                raise bad
            if isinstance(value, float):
                if not value.is_integer():
                    raise bad
                value = int(value)
            n = int(value)  # type: ignore[call-overload]
            if not -INT64 <= n < INT64:
                raise bad
            return n
        if field.type == "float":
            if isinstance(value, bool):
                raise bad
            x = float(value)  # type: ignore[arg-type]
            if not math.isfinite(x):
                raise bad
            return x
        if field.type == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise bad
        if isinstance(value, str):
            value = parse_instant(value)
        if field.type == "date":
            if isinstance(value, datetime):
                return value.date()
            if isinstance(value, date):
                return value
            raise bad
        if isinstance(value, datetime):
            return _aware(value)
        if isinstance(value, date):
            return day_start(value)
        raise bad
    except (TypeError, ValueError, OverflowError):
        raise bad from None


def parse_feature_id(layer: Layer, value: str, integer: bool) -> int | str | None:
    """A feature id as the id column's type, or ``None`` when it cannot be one (a plain 404).

    >>> from layers import VECTOR_LAYERS
    >>> parse_feature_id(VECTOR_LAYERS['parcels'], '42', True), parse_feature_id(
    ...     VECTOR_LAYERS['parcels'], '4x', True)
    (42, None)
    """
    if not integer:
        return value
    if not value.isascii() or not value.lstrip("-").isdigit():
        return None
    n = int(value)
    return n if -INT64 <= n < INT64 else None
