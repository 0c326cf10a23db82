"""Reading import files: GeoJSON, GeoPackage, (zipped) Shapefile via pyogrio, and CSV.

A file is opened as a :class:`Source` that says what it holds (attribute columns, CRS, number
of features) and yields it in chunks of :data:`CHUNK_ROWS` features (:class:`Raw`): attribute
arrays and shapely geometries, with the geometries that are present but cannot be parsed
marked. Nothing is checked against the layer here beyond picking the file's layer by name.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from gis.errors import ImportRejected
from layers import Layer

CHUNK_ROWS = 50_000
OGR_FORMATS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GeoPackage",
               ".zip": "zipped Shapefile", ".shp": "Shapefile"}
CSV_SUFFIX = ".csv"
LON_NAMES = ("lon", "lng", "longitude", "x")
LAT_NAMES = ("lat", "latitude", "y")
WKT_NAMES = ("wkt", "geometry", "geom")


@dataclass
class Raw:
    """One chunk as read: attribute arrays, shapely geometries and unreadable ones."""

    offset: int
    attrs: dict[str, np.ndarray]
    geoms: np.ndarray
    unreadable: np.ndarray  # bool: geometry present in the file but not parseable


@dataclass
class Source:
    """An opened file: what it holds, and its features in chunks (``chunks()``)."""

    name: str
    kind: str
    columns: list[str]  # attribute columns, as spelled in the file
    crs: CRS | None
    total: int
    chunks: Callable[[], Iterator[Raw]]
    unreadable_reason: str = "unreadable geometry"


def _reject_read(path: Path, kind: str, err: Exception) -> ImportRejected:
    msg = str(err).split("; It might help", 1)[0].strip().rstrip(".")
    msg = msg.replace(str(path), path.name).replace(f"'{path.name}' ", "")
    return ImportRejected(f"cannot read {path.name} as {kind}: {msg}", file=path.name)


def open_source(path: Path, layer: Layer) -> Source:
    """Open an import file by its suffix (``.csv``, or one of :data:`OGR_FORMATS`).

    Parameters
    ----------
    path : Path
        The file.
    layer : Layer
        Target layer: of a file with several layers, the one named by its id or table is read.

    Returns
    -------
    Source

    Raises
    ------
    ImportRejected
        The file is missing, a directory, empty, of an unsupported type, unreadable, without
        features or geometry column, with an unusable CRS, or has several layers none of which
        is named after ``layer``.
    """
    if not path.exists():
        raise ImportRejected(f"file not found: {path}", file=str(path))
    if path.is_dir():
        raise ImportRejected(f"{path} is a directory, not a file", file=str(path))
    suffix = path.suffix.lower()
    if suffix != CSV_SUFFIX and suffix not in OGR_FORMATS:
        accepted = ", ".join(sorted({*OGR_FORMATS, CSV_SUFFIX}))
        raise ImportRejected(f"unsupported file type {suffix or '(none)'!r} of {path.name}; "
                             f"accepted: {accepted}", file=path.name)
    if path.stat().st_size == 0:
        raise ImportRejected(f"{path.name} is empty (0 bytes)", file=path.name)
    source = _open_csv(path) if suffix == CSV_SUFFIX else _open_ogr(path, layer)
    if source.total == 0:
        raise ImportRejected(f"{path.name} contains no features", file=path.name)
    return source


def _open_ogr(path: Path, layer: Layer) -> Source:
    import pyogrio
    import pyogrio.raw

    kind = OGR_FORMATS[path.suffix.lower()]
    try:
        with warnings.catch_warnings():  # GDAL's complaints about a broken file: we raise
            warnings.simplefilter("ignore", RuntimeWarning)
            layers = [str(name) for name, _ in pyogrio.list_layers(path)]
        if not layers:
            raise ImportRejected(f"{path.name} contains no layer", file=path.name)
        if len(layers) == 1:
            name = layers[0]
        else:
            match = [n for n in layers if n.lower() in (layer.id, layer.table)]
            if not match:
                raise ImportRejected(
                    f"{path.name} has {len(layers)} layers ({', '.join(layers)}); name the one "
                    f"to import {layer.id!r} or {layer.table!r}, or keep only one",
                    file=path.name)
            name = match[0]
        info = pyogrio.read_info(path, layer=name)
        total = int(info["features"])
        if total < 0:
            total = int(pyogrio.read_info(path, layer=name, force_feature_count=True)["features"])
    except ImportRejected:
        raise
    except Exception as e:  # pyogrio/GDAL errors: unreadable, truncated, wrong format
        raise _reject_read(path, kind, e) from None
    if info["geometry_type"] is None:
        raise ImportRejected(f"{path.name} has no geometry column (layer {name!r} is a plain "
                             "table)", file=path.name)
    try:
        crs = CRS.from_user_input(info["crs"]) if info["crs"] else None
    except Exception as e:  # pyproj.exceptions.CRSError: a CRS that PROJ does not know
        raise ImportRejected(f"{path.name} has a CRS that cannot be used ({e}); give the right "
                             "one with --crs", file=path.name) from None
    columns = [str(c) for c in info["fields"]]
    stream = info["driver"] != "GeoJSON" and total > CHUNK_ROWS

    def read(skip: int = 0, limit: int | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
        try:
            _, _, wkb, data = pyogrio.raw.read(path, layer=name, skip_features=skip,
                                               max_features=limit, force_2d=True,
                                               datetime_as_string=True)
        except Exception as e:
            raise _reject_read(path, kind, e) from None
        return wkb, data

    def chunks() -> Iterator[Raw]:
        if stream:
            parts = ((off, *read(off, CHUNK_ROWS)) for off in range(0, total, CHUNK_ROWS))
        else:
            wkb, data = read()
            parts = ((off, wkb[off:off + CHUNK_ROWS], [d[off:off + CHUNK_ROWS] for d in data])
                     for off in range(0, len(wkb), CHUNK_ROWS))
        for off, wkb, data in parts:
            present = np.array([w is not None for w in wkb], dtype=bool)
            geoms = shapely.from_wkb(wkb, on_invalid="ignore")
            yield Raw(off, dict(zip(columns, data, strict=True)), geoms,
                      present & shapely.is_missing(geoms))

    return Source(path.name, kind, columns, crs, total, chunks)


def _open_csv(path: Path) -> Source:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""],
                         encoding="utf-8-sig", skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise ImportRejected(f"{path.name} is empty (no header line)", file=path.name) from None
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as e:
        raise ImportRejected(f"cannot read {path.name} as CSV (UTF-8, comma-separated): "
                             f"{str(e).splitlines()[0]}", file=path.name) from None
    df.columns = [str(c).strip() for c in df.columns]
    lower = {c.lower(): c for c in df.columns}
    lon = next((lower[n] for n in LON_NAMES if n in lower), None)
    lat = next((lower[n] for n in LAT_NAMES if n in lower), None)
    wkt = next((lower[n] for n in WKT_NAMES if n in lower), None)
    if wkt is None and (lon is None or lat is None):
        raise ImportRejected(
            f"{path.name} has no geometry: a CSV needs lon/lat columns "
            f"({'|'.join(LON_NAMES)} and {'|'.join(LAT_NAMES)}) or a WKT column "
            f"({'|'.join(WKT_NAMES)}); its columns are: {', '.join(df.columns)}",
            file=path.name)
    if wkt is not None:
        lon = lat = None  # a WKT column wins; lon/lat-named columns are then ignored
    geometry_names = {n.lower() for n in (*LON_NAMES, *LAT_NAMES, *WKT_NAMES)}
    columns = [c for c in df.columns if c.lower() not in geometry_names]
    total = len(df)

    def chunks() -> Iterator[Raw]:
        for off in range(0, total, CHUNK_ROWS):
            part = df.iloc[off:off + CHUNK_ROWS]
            if wkt is not None:
                text = part[wkt].to_numpy(dtype=object, na_value=None)
                present = np.array([t is not None for t in text], dtype=bool)
                text = np.array([re.sub(r"^\s*SRID=\d+;", "", t) if t else t for t in text],
                                dtype=object)
                geoms = shapely.from_wkt(text, on_invalid="ignore")
            else:
                x = pd.to_numeric(part[lon], errors="coerce").to_numpy(dtype=float)
                y = pd.to_numeric(part[lat], errors="coerce").to_numpy(dtype=float)
                present = part[lon].notna().to_numpy() | part[lat].notna().to_numpy()
                ok = np.isfinite(x) & np.isfinite(y)
                geoms = np.full(len(part), None, dtype=object)
                geoms[ok] = shapely.points(x[ok], y[ok])
            attrs = {c: part[c].to_numpy(dtype=object, na_value=None) for c in columns}
            yield Raw(off, attrs, geoms, present & shapely.is_missing(geoms))

    reason = "invalid WKT" if wkt is not None else f"invalid coordinates in {lon}/{lat}"
    return Source(path.name, "CSV", columns, None, total, chunks, reason)



def source_crs(source: Source, srid: int | None) -> tuple[CRS, int]:
    """The CRS of the file's coordinates and its EPSG code (0 if it has none).

    ``srid`` (given by the caller) overrides the file's CRS; a CSV without it is EPSG:4326.

    Raises
    ------
    ImportRejected
        The file does not say which CRS it is in and ``srid`` is None.
    """
    if srid is not None:
        return CRS.from_epsg(srid), srid
    if source.crs is None:
        if source.kind == "CSV":
            return CRS.from_epsg(4326), 4326
        raise ImportRejected(f"{source.name} does not say which CRS its coordinates are in; "
                             "give it with --crs (e.g. --crs EPSG:9214 for VN-2000 / TM-3 "
                             "107-00, --crs EPSG:4326 for lon/lat)", file=source.name)
    if source.crs.to_authority() == ("OGC", "CRS84"):
        return source.crs, 4326
    return source.crs, source.crs.to_epsg() or 0

