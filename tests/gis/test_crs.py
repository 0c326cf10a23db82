"""CRS references and bounding boxes: what the CLI and the API accept."""

import math

import pytest
from pyproj import CRS

from gis.crs import SUPPORTED_CRS, crs_uri, parse_bbox, parse_crs
from gis.errors import InvalidBBox, UnknownCRS


@pytest.mark.parametrize("value", [
    9214, "9214", "EPSG:9214", "epsg:9214", " EPSG:9214 ",
    "http://www.opengis.net/def/crs/EPSG/0/9214",
    "https://www.opengis.net/def/crs/EPSG/0/9214",
    "urn:ogc:def:crs:EPSG::9214", "urn:ogc:def:crs:EPSG:9.9.1:9214",
])
def test_parse_crs_forms(value: str | int) -> None:
    assert parse_crs(value) == 9214


@pytest.mark.parametrize("value", [
    "OGC:CRS84", "CRS84", "crs84", "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "urn:ogc:def:crs:OGC:1.3:CRS84", "EPSG:4326", 4326,
])
def test_crs84_is_4326(value: str | int) -> None:
    assert parse_crs(value) == 4326


def test_vn2000_family_is_supported() -> None:
    expected = {4326, 3857, 4756, 3405, 3406, 5896, 5897, 5898, 5899, *range(9205, 9219)}
    assert expected <= set(SUPPORTED_CRS)
    for srid, name in SUPPORTED_CRS.items():  # names agree with the EPSG database
        assert CRS.from_epsg(srid).name == name
    assert parse_crs("EPSG:3405") == 3405
    assert parse_crs("EPSG:4756") == 4756


@pytest.mark.parametrize("value", ["EPSG:999999", "EPSG:2000", 27700, "EPSG:", "WGS84",
                                   "foo", "", "EPSG:9214x", "OGC:CRS83", 3.5, True, None])
def test_unknown_crs(value: object) -> None:
    with pytest.raises(UnknownCRS) as err:
        parse_crs(value)  # type: ignore[arg-type]
    assert err.value.code == "UnknownCRS"
    message = str(err.value)
    assert "EPSG:9214" in message and "OGC:CRS84" in message  # lists the accepted forms


def test_crs_uri() -> None:
    assert crs_uri(4326) == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    assert crs_uri(9214) == "http://www.opengis.net/def/crs/EPSG/0/9214"
    assert parse_crs(crs_uri(9214)) == 9214


@pytest.mark.parametrize("value", ["107.56,16.44,107.62,16.48", " 107.56, 16.44 ,107.62,16.48",
                                   [107.56, 16.44, 107.62, 16.48],
                                   (107.56, 16.44, 107.62, 16.48)])
def test_parse_bbox(value: object) -> None:
    assert parse_bbox(value) == (107.56, 16.44, 107.62, 16.48)  # type: ignore[arg-type]


@pytest.mark.parametrize("value, problem", [
    ("107.56,16.44,107.62", "exactly 4"),
    ("107.56,16.44,107.62,16.48,5", "exactly 4"),
    ("a,16.44,107.62,16.48", "not a number"),
    ("107.56,16.44,,16.48", "not a number"),
    ("nan,16.44,107.62,16.48", "not finite"),
    ("107.56,16.44,inf,16.48", "not finite"),
    ([107.56, 16.44, math.inf, 16.48], "not finite"),
    ("107.62,16.44,107.56,16.48", "west"),
    ("107.56,16.48,107.62,16.44", "south"),
    ("107.56,16.44,107.56,16.48", "west"),
    ([True, 1, 2, 3], "not a number"),
    (42, "W,S,E,N"),
])
def test_invalid_bbox(value: object, problem: str) -> None:
    with pytest.raises(InvalidBBox) as err:
        parse_bbox(value)  # type: ignore[arg-type]
    assert err.value.code == "InvalidBBox"
    assert problem in str(err.value)
