"""``export_response``: streamed GeoJSON, CSV and GeoPackage downloads of feature streams,
in constant memory (checked by counting what the source has produced when bytes leave)."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pandas as pd
import pyogrio
import pytest
from fastapi.responses import StreamingResponse

from api.exports import download_format, export_response
from gis.errors import InvalidParameter, UnknownCRS
from gis.io.stream import CHUNK_ROWS

pytestmark = pytest.mark.filterwarnings("ignore:.*non conformant file extension")
N = CHUNK_ROWS * 2 + 7


class Source:
    """N point features; ``produced`` counts how many were handed out."""

    def __init__(self, n: int = N) -> None:
        self.n = n
        self.produced = 0

    async def __aiter__(self) -> AsyncIterator[str]:
        for i in range(self.n):
            self.produced += 1
            yield json.dumps({"type": "Feature", "id": i, "geometry": {
                "type": "Point", "coordinates": [107.5 + i * 1e-6, 16.4]},
                "properties": {"n": i, "name": f"điểm {i}", "owner_name": "Bí Mật",
                               "share": i / 2}})


def run(coro):
    return asyncio.run(coro)


async def collect(resp: StreamingResponse, source: Source) -> tuple[bytes, int]:
    """The body, and how many features the source had produced when the first bytes left."""
    body = bytearray()
    first = None
    async for part in resp.body_iterator:
        if first is None and part:
            first = source.produced
        body += part if isinstance(part, bytes) else part.encode()
    return bytes(body), first if first is not None else source.produced


@pytest.mark.parametrize("fmt", ["geojson", "csv"])
def test_text_formats_stream_as_produced(fmt: str) -> None:
    src = Source()

    async def go():
        resp = await export_response(src.__aiter__(), fmt, ["n", "name", "share"], "pts")
        assert src.produced == 0  # nothing read before the body is sent
        return resp, await collect(resp, src)

    resp, (body, first) = run(go())
    assert isinstance(resp, StreamingResponse)
    assert resp.headers["content-disposition"] == f'attachment; filename="pts.{fmt}"'
    assert first <= CHUNK_ROWS  # the first bytes left after one chunk, not after all of it
    if fmt == "geojson":
        doc = json.loads(body)
        assert len(doc["features"]) == N and doc["features"][5]["properties"]["n"] == 5
    else:
        df = pd.read_csv(io.BytesIO(body))
        assert list(df.columns) == ["n", "name", "share", "wkt"] and len(df) == N
        assert df["wkt"].iloc[1] == "POINT (107.500001 16.4)"
        assert "Bí Mật" not in body.decode()  # a property not in ``fields`` never leaves


def test_geopackage_written_in_chunks_then_streamed_and_deleted(tmp_path: Path,
                                                                monkeypatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    src = Source()
    writes: list[int] = []
    from gis.io import stream

    original = stream.GpkgWriter.write

    def counting(self, chunk):
        writes.append(len(chunk))
        return original(self, chunk)

    monkeypatch.setattr(stream.GpkgWriter, "write", counting)

    async def go():
        resp = await export_response(src.__aiter__(), "gpkg", ["n", "name", "share"], "pts",
                                     crs="EPSG:9214", types={"n": "int", "share": "float"},
                                     geometry_type="Point")
        assert len(list(tmp_path.iterdir())) == 1  # the temporary file, complete
        body, _ = await collect(resp, src)
        await resp.background()
        return resp, body

    resp, body = run(go())
    assert writes == [CHUNK_ROWS, CHUNK_ROWS, 7]  # one chunk in memory at a time
    assert list(tmp_path.iterdir()) == []  # deleted after streaming
    assert resp.headers["content-crs"] == "<http://www.opengis.net/def/crs/EPSG/0/9214>"
    info = pyogrio.read_info(io.BytesIO(body))
    assert info["features"] == N and info["crs"] == "EPSG:9214"
    assert dict(zip(info["fields"], info["ogr_types"], strict=True)) == {
        "n": "OFTInteger64", "name": "OFTString", "share": "OFTReal"}


@pytest.mark.parametrize("fmt", ["geojson", "csv", "gpkg"])
def test_empty_results_are_valid_files(fmt: str) -> None:
    src = Source(0)

    async def go():
        resp = await export_response(src.__aiter__(), fmt, ["n", "name"], "none",
                                     types={"n": "int"})
        body, _ = await collect(resp, src)
        if resp.background:
            await resp.background()
        return body

    body = run(go())
    if fmt == "geojson":
        assert json.loads(body)["features"] == []
    elif fmt == "csv":
        assert body.decode().strip() == "n,name,wkt"
    else:
        info = pyogrio.read_info(io.BytesIO(body))
        assert info["features"] == 0 and list(info["fields"]) == ["n", "name"]


def test_refusals_and_negotiation() -> None:
    with pytest.raises(InvalidParameter):
        run(export_response(Source(1).__aiter__(), "kml", ["n"], "x"))
    with pytest.raises(UnknownCRS):
        run(export_response(Source(1).__aiter__(), "csv", ["n"], "x", crs="EPSG:1"))
    assert download_format("gpkg") == "gpkg" and download_format(None) is None
    assert download_format("json") is None
    with pytest.raises(InvalidParameter):
        download_format("shp")
