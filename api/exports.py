"""Streamed downloads of features and query results as GeoJSON, CSV and GeoPackage.

``export_response`` turns an async stream of GeoJSON Feature texts into a download in
constant memory, with the chunked writers of :mod:`gis.io.stream` (the same ones as
``huegis export``): GeoJSON and CSV are sent as they are produced; a GeoPackage is written
chunk by chunk (pyogrio append) to a temporary file, which is then streamed and deleted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from gis.crs import parse_crs
from gis.errors import InvalidParameter
from gis.io.stream import (
    MEDIA_TYPES,
    CSVWriter,
    FeatureBatcher,
    GeoJSONWriter,
    GpkgWriter,
    batches,
    crs_header,
    file_blocks,
    temp_gpkg_path,
)

EXPORT_FORMATS = ("geojson", "csv", "gpkg")
_ACCEPT = {"application/geo+json": "geojson", "text/csv": "csv",
           "application/geopackage+sqlite3": "gpkg"}


def download_format(f: str | None, request: Request | None = None) -> str | None:
    """The download format asked for by ``f`` or, failing that, the Accept header (None: the
    endpoint's usual JSON). An unknown ``f`` is a 400."""
    if f is not None:
        if f in EXPORT_FORMATS:
            return f
        if f == "json":
            return None
        raise InvalidParameter(f"f must be one of json, {', '.join(EXPORT_FORMATS)}; got {f!r}")
    if request is not None:
        accept = request.headers.get("accept", "")
        for media, fmt in _ACCEPT.items():
            if media in accept and fmt != "geojson":
                return fmt
    return None


async def export_response(features: AsyncIterator[str], fmt: str, fields: list[str],
                          filename: str, crs: str | None = None, *,
                          types: Mapping[str, str] | None = None,
                          geometry_type: str = "Unknown") -> Response:
    """A streamed download of ``features`` (GeoJSON Feature texts, CRS84 unless ``crs``).

    ``fields`` are the property names (the columns of CSV and GeoPackage, in order; other
    properties are dropped, so callers pass only what the caller may see); ``types`` their
    catalog types (``int``, ``float``, ``bool``, ``text``…) for typed GeoPackage columns;
    ``crs`` the CRS the coordinates are in (it labels the file and the ``Content-Crs``
    header); ``filename`` without extension.
    """
    if fmt not in EXPORT_FORMATS:
        raise InvalidParameter(f"unknown export format {fmt!r}; use one of "
                               f"{', '.join(EXPORT_FORMATS)}", format=str(fmt))
    srid = parse_crs(crs) if crs is not None else 4326
    headers = {"Content-Disposition": f'attachment; filename="{filename}.{fmt}"',
               **crs_header(srid)}
    batcher = FeatureBatcher(list(fields), dict(types or {}))
    if fmt == "geojson":
        geojson = GeoJSONWriter(srid)

        async def geojson_body() -> AsyncIterator[bytes]:
            yield geojson.start()
            async for batch in batches(features):
                yield geojson.write_texts(batch)
            yield geojson.finish()

        return StreamingResponse(geojson_body(), media_type=MEDIA_TYPES["geojson"],
                                 headers=headers)
    if fmt == "csv":
        projected = srid not in (4326, 4756)
        csv = CSVWriter(projected=projected, columns=list(fields))

        async def csv_body() -> AsyncIterator[bytes]:
            async for batch in batches(features):
                yield csv.write(batcher.chunk(batch))
            yield csv.finish()

        return StreamingResponse(csv_body(), media_type=MEDIA_TYPES["csv"], headers=headers)
    path = temp_gpkg_path()
    gpkg = GpkgWriter(path, filename, srid, geometry_type)
    try:
        async for batch in batches(features):
            await run_in_threadpool(gpkg.write, batcher.chunk(batch))
        gpkg.empty = batcher.empty_frame()
        await run_in_threadpool(gpkg.finish)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    headers["Content-Length"] = str(path.stat().st_size)
    return StreamingResponse(file_blocks(path), media_type=MEDIA_TYPES["gpkg"],
                             headers=headers,
                             background=BackgroundTask(path.unlink, missing_ok=True))
