"""Streamed downloads of features and query results as GeoJSON, CSV and GeoPackage.

``export_response`` turns an async stream of GeoJSON Feature texts into a download in
constant memory. (Owned by the exports work of the OGC Features issue.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Response

from gis.errors import InvalidParameter

EXPORT_FORMATS = ("geojson", "csv", "gpkg")


async def export_response(features: AsyncIterator[str], fmt: str, fields: list[str],
                          filename: str, crs: str | None = None) -> Response:
    """A streamed download of ``features`` (GeoJSON Feature texts, CRS84 unless ``crs``)."""
    raise InvalidParameter(f"export format {fmt!r} is not available yet")
