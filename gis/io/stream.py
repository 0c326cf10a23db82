"""Chunked writers: GeoJSON, CSV and GeoPackage in constant memory.

Features arrive in :class:`Chunk` s (attribute columns plus an array of shapely geometries,
already in the output CRS). Each writer turns one chunk into bytes (GeoJSON, CSV) or appends it
to a file (GeoPackage, with pyogrio), so memory depends on the chunk size, never on the number
of features. ``huegis export`` (:mod:`gis.io.exporter`) and the API's downloads
(:mod:`api.exports`) use the same writers.

>>> import shapely
>>> c = Chunk(pd.DataFrame({"name": ["Đại Nội"]}), np.array([shapely.Point(107.5775, 16.469)]))
>>> w = GeoJSONWriter()
>>> text = (w.start() + w.write(c) + w.finish()).decode()
>>> json.loads(text)["features"][0]["properties"]
{'name': 'Đại Nội'}
>>> w = CSVWriter()
>>> (w.write(c) + w.finish()).decode().splitlines()
['name,wkt', 'Đại Nội,POINT (107.5775 16.469)']
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from gis.crs import crs_uri

STREAM_FORMATS: tuple[str, ...] = ("geojson", "csv", "gpkg")
MEDIA_TYPES = {"geojson": "application/geo+json", "csv": "text/csv; charset=utf-8",
               "gpkg": "application/geopackage+sqlite3"}
CHUNK_ROWS = 10_000
FILE_BLOCK = 1 << 16  # bytes per block when streaming a finished GeoPackage


@dataclass
class Chunk:
    """Some features: attribute columns and one shapely geometry (or None) per row."""

    frame: pd.DataFrame
    geometry: np.ndarray

    def __len__(self) -> int:
        return len(self.frame)


def _plain(value: object) -> object:
    """A JSON-ready Python value from a pandas/numpy cell."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _rows(frame: pd.DataFrame) -> Iterator[dict]:
    names = list(frame.columns)
    for values in frame.itertuples(index=False, name=None):
        yield {n: _plain(v) for n, v in zip(names, values, strict=True)}


class GeoJSONWriter:
    """A FeatureCollection written piece by piece.

    ``id_field`` (a column) becomes each feature's ``id``; a CRS other than CRS84 is named
    in the (pre-RFC 7946) ``crs`` member, which GDAL reads.
    """

    def __init__(self, srid: int = 4326, id_field: str | None = None) -> None:
        self.srid = srid
        self.id_field = id_field
        self._first = True

    def start(self) -> bytes:
        head = '{"type": "FeatureCollection"'
        if self.srid != 4326:
            head += (', "crs": {"type": "name", "properties": {"name": '
                     f'"urn:ogc:def:crs:EPSG::{self.srid}"}}}}')
        return (head + ', "features": [\n').encode()

    def write_texts(self, features: Iterable[str]) -> bytes:
        """Feature texts that are already GeoJSON (no re-parsing)."""
        out = []
        for text in features:
            out.append(text if self._first else ",\n" + text)
            self._first = False
        return "".join(out).encode()

    def write(self, chunk: Chunk) -> bytes:
        geoms = shapely.to_geojson(chunk.geometry)
        texts = []
        for props, geom in zip(_rows(chunk.frame), geoms, strict=True):
            feature = '{"type": "Feature", '
            if self.id_field is not None and props.get(self.id_field) is not None:
                feature += f'"id": {json.dumps(props[self.id_field])}, '
            feature += (f'"geometry": {geom if geom is not None else "null"}, "properties": '
                        f"{json.dumps(props, ensure_ascii=False)}}}")
            texts.append(feature)
        return self.write_texts(texts)

    def finish(self) -> bytes:
        return b"\n]}\n"


class CSVWriter:
    """CSV with a header row: the attribute columns, then the geometry as ``wkt`` or, with
    ``point_columns``, as ``lon``/``lat`` (``x``/``y`` when ``projected``)."""

    def __init__(self, point_columns: bool = False, projected: bool = False,
                 columns: list[str] | None = None) -> None:
        self.point_columns = point_columns
        self.xy = ("x", "y") if projected else ("lon", "lat")
        self.columns = columns  # for the header of an empty result
        self._header = True

    def write(self, chunk: Chunk) -> bytes:
        df = chunk.frame.copy()
        if self.point_columns:
            df[self.xy[0]] = shapely.get_x(chunk.geometry)
            df[self.xy[1]] = shapely.get_y(chunk.geometry)
        else:
            df["wkt"] = shapely.to_wkt(chunk.geometry, rounding_precision=-1)
        buf = io.StringIO()
        df.to_csv(buf, index=False, header=self._header)
        self._header = False
        return buf.getvalue().encode("utf-8")

    def finish(self) -> bytes:
        if self._header and self.columns is not None:  # nothing written: the header alone
            empty = Chunk(pd.DataFrame({c: [] for c in self.columns}), np.array([], object))
            return self.write(empty)
        return b""


class GpkgWriter:
    """Appends chunks to one GeoPackage layer with pyogrio (the file holds the data, memory
    holds one chunk); ``finish`` makes sure the layer exists even with no feature."""

    def __init__(self, path: Path | str, layer: str, srid: int = 4326,
                 geometry_type: str = "Unknown", empty: pd.DataFrame | None = None) -> None:
        self.path = Path(path)
        self.layer = layer
        self.srid = srid
        self.geometry_type = geometry_type
        self.empty = empty
        self.count = 0

    def write(self, chunk: Chunk) -> bytes:
        import geopandas as gpd
        import pyogrio

        if not len(chunk):
            if self.empty is None:
                self.empty = chunk.frame
            return b""
        gdf = gpd.GeoDataFrame(chunk.frame.reset_index(drop=True), geometry=gpd.GeoSeries(
            chunk.geometry, crs=self.srid, index=pd.RangeIndex(len(chunk))))
        pyogrio.write_dataframe(gdf, self.path, layer=self.layer, driver="GPKG",
                                geometry_type=self.geometry_type, append=self.count > 0)
        self.count += len(chunk)
        return b""

    def finish(self) -> bytes:
        if self.count == 0:
            import geopandas as gpd
            import pyogrio

            frame = self.empty if self.empty is not None else pd.DataFrame()
            gdf = gpd.GeoDataFrame(frame.iloc[:0], geometry=gpd.GeoSeries([], crs=self.srid))
            pyogrio.write_dataframe(gdf, self.path, layer=self.layer, driver="GPKG",
                                    geometry_type=self.geometry_type)
        return b""


def file_blocks(path: Path, delete: bool = True) -> Iterator[bytes]:
    """The bytes of ``path`` in blocks, deleting the file at the end (or on close)."""
    try:
        with open(path, "rb") as f:
            while block := f.read(FILE_BLOCK):
                yield block
    finally:
        if delete:
            Path(path).unlink(missing_ok=True)


def temp_gpkg_path(directory: Path | str | None = None) -> Path:
    """A fresh path for a temporary GeoPackage (the caller deletes it)."""
    fd, name = tempfile.mkstemp(prefix="huegis-", suffix=".gpkg", dir=directory)
    os.close(fd)
    os.unlink(name)  # GDAL creates the file itself
    return Path(name)


# ------------------------------------------------------------- GeoJSON feature texts → chunks

_DTYPES = {"int": "Int64", "float": "Float64", "bool": "boolean"}


@dataclass
class FeatureBatcher:
    """Turns GeoJSON Feature texts into :class:`Chunk` s with a fixed column list.

    Column types come from ``types`` (catalog types: int, float, bool, text, date…) or,
    when missing, from the first value seen, and stay the same for every chunk (a GeoPackage
    layer has one schema). Unknown properties are dropped, missing ones are null; a column
    ``id`` takes the feature's ``id`` when the properties have none.

    >>> b = FeatureBatcher(["n"], {"n": "int"})
    >>> c = b.chunk(['{"type": "Feature", "geometry": {"type": "Point", '
    ...              '"coordinates": [1, 2]}, "properties": {"n": 3}}'])
    >>> c.frame["n"].tolist(), c.geometry[0].wkt
    ([3], 'POINT (1 2)')
    """

    fields: list[str]
    types: Mapping[str, str] = field(default_factory=dict)
    _dtypes: dict[str, str] = field(default_factory=dict)

    def _dtype(self, name: str, values: list) -> str:
        if name not in self._dtypes:
            kind = self.types.get(name)
            if kind is None:
                first = next((v for v in values if v is not None), None)
                kind = ("bool" if isinstance(first, bool) else "int" if isinstance(first, int)
                        else "float" if isinstance(first, float) else "text")
            self._dtypes[name] = _DTYPES.get(kind, "object")
        return self._dtypes[name]

    def empty_frame(self) -> pd.DataFrame:
        """The columns with no row (the schema of an empty GeoPackage)."""
        return pd.DataFrame({n: pd.array([], dtype=self._dtypes.get(
            n, _DTYPES.get(self.types.get(n, "text"), "object"))) for n in self.fields})

    def chunk(self, texts: list[str]) -> Chunk:
        props: list[dict] = []
        geoms: list[str | None] = []
        for text in texts:
            feature = json.loads(text)
            p = feature.get("properties") or {}
            if feature.get("id") is not None and "id" not in p:  # the feature's own id
                p = {"id": feature["id"], **p}
            props.append(p)
            g = feature.get("geometry")
            geoms.append(json.dumps(g) if g else None)
        data: dict[str, pd.array] = {}
        for name in self.fields:
            values = [p.get(name) for p in props]
            dtype = self._dtype(name, values)
            if dtype == "object":
                values = [v if v is None or isinstance(v, str)
                          else json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list)
                          else str(v) for v in values]
            try:
                data[name] = pd.array(values, dtype=dtype)
            except (TypeError, ValueError):
                data[name] = pd.array([None if v is None else str(v) for v in values],
                                      dtype=object)
        frame = pd.DataFrame(data, index=pd.RangeIndex(len(texts)))
        geometry = np.empty(len(geoms), dtype=object)
        present = [i for i, g in enumerate(geoms) if g is not None]
        if present:
            geometry[present] = shapely.from_geojson([geoms[i] for i in present])
        return Chunk(frame, geometry)


async def batches(features: AsyncIterator[str], size: int = CHUNK_ROWS
                  ) -> AsyncIterator[list[str]]:
    """Lists of at most ``size`` items from an async iterator."""
    batch: list[str] = []
    async for item in features:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def crs_header(srid: int) -> dict[str, str]:
    """The ``Content-Crs`` header of a response in ``srid`` (OGC API Features Part 2)."""
    return {"Content-Crs": f"<{crs_uri(srid)}>"}
