"""Coordinate reference systems and bounding boxes accepted by Huế GIS.

Data is stored in EPSG:4326 (lon/lat). Imports and exports may use any CRS of
:data:`SUPPORTED_CRS`, notably the VN-2000 family: EPSG:9214 (VN-2000 / TM-3 107-00, the
local system of Huế's cadastral maps), EPSG:3405 (VN-2000 / UTM 48N) and EPSG:4756 (VN-2000
geographic). The 0002 migration registers them in ``spatial_ref_sys``.

>>> parse_crs("EPSG:9214")
9214
>>> parse_crs("http://www.opengis.net/def/crs/OGC/1.3/CRS84")
4326
>>> parse_bbox("107.56,16.44,107.62,16.48")
(107.56, 16.44, 107.62, 16.48)
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from gis.errors import InvalidBBox, UnknownCRS

CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"

SUPPORTED_CRS: dict[int, str] = {
    4326: "WGS 84",
    3857: "WGS 84 / Pseudo-Mercator",
    32648: "WGS 84 / UTM zone 48N",
    32649: "WGS 84 / UTM zone 49N",
    4756: "VN-2000",
    3405: "VN-2000 / UTM zone 48N",
    3406: "VN-2000 / UTM zone 49N",
    5896: "VN-2000 / TM-3 zone 481",
    5897: "VN-2000 / TM-3 zone 482",
    5898: "VN-2000 / TM-3 zone 491",
    5899: "VN-2000 / TM-3 107-45",
    9205: "VN-2000 / TM-3 103-00",
    9206: "VN-2000 / TM-3 104-00",
    9207: "VN-2000 / TM-3 104-30",
    9208: "VN-2000 / TM-3 104-45",
    9209: "VN-2000 / TM-3 105-30",
    9210: "VN-2000 / TM-3 105-45",
    9211: "VN-2000 / TM-3 106-00",
    9212: "VN-2000 / TM-3 106-15",
    9213: "VN-2000 / TM-3 106-30",
    9214: "VN-2000 / TM-3 107-00",
    9215: "VN-2000 / TM-3 107-15",
    9216: "VN-2000 / TM-3 107-30",
    9217: "VN-2000 / TM-3 108-15",
    9218: "VN-2000 / TM-3 108-30",
}
"""SRID → name of every CRS accepted for import, export and the API (CRS84 is 4326)."""

ACCEPTED_FORMS = ("EPSG:9214", "9214", "http://www.opengis.net/def/crs/EPSG/0/9214",
                  "urn:ogc:def:crs:EPSG::9214", "OGC:CRS84", CRS84_URI)

_CRS84 = re.compile(
    r"^(?:ogc:crs84|crs84|https?://www\.opengis\.net/def/crs/ogc/1\.3/crs84|"
    r"urn:ogc:def:crs:ogc:1\.3:crs84|urn:ogc:def:crs:ogc::crs84)$")
_EPSG = re.compile(
    r"^(?:epsg:|https?://www\.opengis\.net/def/crs/epsg/0/|urn:ogc:def:crs:epsg:[0-9.]*:)?"
    r"([0-9]{1,6})$")


def _unknown(value: object, why: str) -> UnknownCRS:
    return UnknownCRS(
        f"{why}: {value!r}. Accepted forms: {', '.join(ACCEPTED_FORMS)}. Supported CRS: "
        + ", ".join(f"EPSG:{s}" for s in SUPPORTED_CRS),
        value=str(value), supported=sorted(SUPPORTED_CRS))


def parse_crs(value: str | int) -> int:
    """Parse a CRS reference into a supported SRID.

    Parameters
    ----------
    value : str or int
        ``9214``, ``'9214'``, ``'EPSG:9214'``, ``'http://www.opengis.net/def/crs/EPSG/0/9214'``,
        ``'urn:ogc:def:crs:EPSG::9214'``, ``'OGC:CRS84'`` or the CRS84 URI (case-insensitive).

    Returns
    -------
    int
        The SRID; CRS84 (lon/lat WGS 84) is ``4326``.

    Raises
    ------
    UnknownCRS
        The value is not a CRS reference, or not one of :data:`SUPPORTED_CRS`; the message
        lists the accepted forms.

    Examples
    --------
    >>> parse_crs("urn:ogc:def:crs:EPSG::3405")
    3405
    >>> parse_crs("OGC:CRS84")
    4326
    """
    if isinstance(value, bool):
        raise _unknown(value, "not a CRS reference")
    if isinstance(value, int):
        srid = value
    elif isinstance(value, str):
        text = value.strip().lower()
        if _CRS84.match(text):
            return 4326
        m = _EPSG.match(text)
        if not m:
            raise _unknown(value, "not a CRS reference")
        srid = int(m.group(1))
    else:
        raise _unknown(value, "not a CRS reference")
    if srid not in SUPPORTED_CRS:
        raise _unknown(value, f"unsupported CRS EPSG:{srid}")
    return srid


def crs_uri(srid: int) -> str:
    """OGC URI of a supported SRID (4326 is given as CRS84, lon/lat order).

    >>> crs_uri(9214)
    'http://www.opengis.net/def/crs/EPSG/0/9214'
    """
    return CRS84_URI if srid == 4326 else EPSG_URI.format(srid)


def parse_bbox(value: str | Sequence[float]) -> tuple[float, float, float, float]:
    """Parse a bounding box ``W,S,E,N``.

    Parameters
    ----------
    value : str or sequence of float
        ``'107.56,16.44,107.62,16.48'`` or four numbers.

    Returns
    -------
    tuple of float
        ``(west, south, east, north)``.

    Raises
    ------
    InvalidBBox
        Not exactly four finite numbers, or ``west >= east`` or ``south >= north``.

    Examples
    --------
    >>> parse_bbox([107.5, 16.4, 107.7, 16.5])
    (107.5, 16.4, 107.7, 16.5)
    """
    if isinstance(value, str):
        parts: Sequence[object] = [p.strip() for p in value.split(",")]
    elif isinstance(value, Sequence):
        parts = value
    else:
        raise InvalidBBox(f"bbox must be 'W,S,E,N', got {value!r}", value=str(value))
    if len(parts) != 4:
        raise InvalidBBox(f"bbox must have exactly 4 numbers W,S,E,N, got {len(parts)}: "
                          f"{value!r}", value=str(value))
    nums: list[float] = []
    for p in parts:
        try:
            if isinstance(p, bool):
                raise ValueError
            x = float(p)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidBBox(f"bbox value {p!r} is not a number", value=str(value)) from None
        if not math.isfinite(x):
            raise InvalidBBox(f"bbox value {p!r} is not finite", value=str(value))
        nums.append(x)
    w, s, e, n = nums
    if w >= e:
        raise InvalidBBox(f"bbox west ({w}) must be less than east ({e})", value=str(value))
    if s >= n:
        raise InvalidBBox(f"bbox south ({s}) must be less than north ({n})", value=str(value))
    return (w, s, e, n)
