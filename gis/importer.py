"""Import vector files (GeoJSON, GeoPackage, zipped Shapefile, CSV) into a catalog layer.

The import is all or nothing: it runs in a SAVEPOINT of the caller's transaction, and when it
raises nothing was written. The caller commits. With ``skip_invalid=True`` the rows that fail
validation are left out and reported instead.

Pipeline (vectorised with shapely 2 / numpy / pandas, no per-row geometry loop on the hot
path), in three threads: one reads the file in chunks (pyogrio); one reprojects to EPSG:4326
(pyproj), checks and repairs geometries, coerces attributes to the layer's field types,
computes ``area_m2`` (in EPSG:9214) and ``ward_code`` (point in ward polygon), checks the
layer's natural key and formats the accepted rows as a COPY block; the calling thread streams
the blocks into the table with one ``COPY``, while PostgreSQL ingests on its own core. (Whole
blocks in the text format that :func:`gis.bulk.copy_rows` writes row by row: the sending
thread then needs almost no Python time.)

Row numbers in messages are 1-based positions of features in the file (for CSV: data lines
after the header).
"""

from __future__ import annotations

import queue
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql
from pyproj import CRS, Transformer

from gis.bulk import copy_statement
from gis.catalog import vector_layer
from gis.crs import parse_crs
from gis.errors import ImportRejected, LayerNotFound
from layers import VECTOR_LAYERS, Layer
from layers.base import Field

CHUNK_ROWS = 50_000
# Used when no city boundary is loaded (W, S, E, N in EPSG:4326).
HUE_FALLBACK_BBOX = (107.0, 15.9, 108.3, 16.8)
AREA_SRID = 9214  # VN-2000 / TM-3 107-00: areas of parcels are measured in it
LOCAL_TZ = "Asia/Ho_Chi_Minh"  # naive datetimes in files are Huế local time
MAX_LISTED = 20  # problems listed in an error message

OGR_FORMATS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GeoPackage",
               ".zip": "zipped Shapefile", ".shp": "Shapefile"}
CSV_SUFFIX = ".csv"
DBF_NAME_LENGTH = 10  # Shapefile attribute names are at most 10 characters
LON_NAMES = ("lon", "lng", "longitude", "x")
LAT_NAMES = ("lat", "latitude", "y")
WKT_NAMES = ("wkt", "geometry", "geom")
# Identifier and geometry columns that are never attributes.
IGNORED_COLUMNS = frozenset({"id", "fid", "ogc_fid", "geometry", "geom", "the_geom",
                             "wkb_geometry", "wkt"})

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "có", "co"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "không", "khong"})
INT_RANGES = {"smallint": (-(2**15), 2**15 - 1), "integer": (-(2**31), 2**31 - 1),
              "bigint": (-(2**63), 2**63 - 1)}
_TYPE_IDS = {"Point": 0, "LineString": 1, "Polygon": 3, "MultiPoint": 4, "MultiLineString": 5,
             "MultiPolygon": 6}
_TYPE_NAMES = {0: "Point", 1: "LineString", 2: "LinearRing", 3: "Polygon", 4: "MultiPoint",
               5: "MultiLineString", 6: "MultiPolygon", 7: "GeometryCollection"}
_AWARE = r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"


@dataclass
class ImportReport:
    """What an import did.

    Attributes
    ----------
    layer : str
        Layer id.
    read : int
        Features read from the file.
    inserted : int
        Rows written.
    repaired : list of int
        Row numbers (1-based) whose invalid geometry was repaired (``shapely.make_valid``).
    skipped : list of (int, str)
        Rows left out with ``skip_invalid=True``: row number and reason.
    source_crs : int
        EPSG code of the file's coordinates (0 if the file's CRS has none).
    seconds : float
        Wall-clock duration.
    """

    layer: str
    read: int
    inserted: int
    repaired: list[int] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    source_crs: int = 4326
    seconds: float = 0.0


# --------------------------------------------------------------------------- layers


def resolve_layer(layer: Layer | str) -> Layer:
    """The catalog layer for an id (or a :class:`Layer`), checked to be in the catalog.

    Raises
    ------
    LayerNotFound
        No vector layer of the catalog has this id.
    """
    layer_id = layer if isinstance(layer, str) else layer.id
    found = vector_layer(layer_id)
    if isinstance(layer, Layer) and layer != found:
        raise LayerNotFound(f"layer {layer_id!r} differs from the catalog's", layer=layer_id)
    return found


def _importable(layer: Layer | str) -> Layer:
    found = resolve_layer(layer)
    if not found.importable:
        importable = sorted(k for k, v in VECTOR_LAYERS.items() if v.importable)
        raise ImportRejected(f"layer {found.id!r} cannot be imported (it is maintained by "
                             f"the platform); importable layers: {', '.join(importable)}",
                             layer=found.id)
    return found


def _table(layer: Layer) -> str:
    return f"{layer.schema}.{layer.table}"


def _ident(layer: Layer) -> sql.Identifier:
    return sql.Identifier(layer.schema, layer.table)


# --------------------------------------------------------------------------- reading


@dataclass
class _Raw:
    """One chunk as read: attribute arrays, shapely geometries and unreadable ones."""

    offset: int
    attrs: dict[str, np.ndarray]
    geoms: np.ndarray
    unreadable: np.ndarray  # bool: geometry present in the file but not parseable


@dataclass
class _Source:
    name: str
    kind: str
    columns: list[str]  # attribute columns, as spelled in the file
    crs: CRS | None
    total: int
    chunks: Callable[[], Iterator[_Raw]]
    unreadable_reason: str = "unreadable geometry"


def _reject_read(path: Path, kind: str, err: Exception) -> ImportRejected:
    msg = str(err).split("; It might help", 1)[0].strip().rstrip(".")
    msg = msg.replace(str(path), path.name).replace(f"'{path.name}' ", "")
    return ImportRejected(f"cannot read {path.name} as {kind}: {msg}", file=path.name)


def _open(path: Path, layer: Layer) -> _Source:
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


def _open_ogr(path: Path, layer: Layer) -> _Source:
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

    def chunks() -> Iterator[_Raw]:
        if stream:
            parts = ((off, *read(off, CHUNK_ROWS)) for off in range(0, total, CHUNK_ROWS))
        else:
            wkb, data = read()
            parts = ((off, wkb[off:off + CHUNK_ROWS], [d[off:off + CHUNK_ROWS] for d in data])
                     for off in range(0, len(wkb), CHUNK_ROWS))
        for off, wkb, data in parts:
            present = np.array([w is not None for w in wkb], dtype=bool)
            geoms = shapely.from_wkb(wkb, on_invalid="ignore")
            yield _Raw(off, dict(zip(columns, data, strict=True)), geoms,
                       present & shapely.is_missing(geoms))

    return _Source(path.name, kind, columns, crs, total, chunks)


def _open_csv(path: Path) -> _Source:
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

    def chunks() -> Iterator[_Raw]:
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
            yield _Raw(off, attrs, geoms, present & shapely.is_missing(geoms))

    reason = "invalid WKT" if wkt is not None else f"invalid coordinates in {lon}/{lat}"
    return _Source(path.name, "CSV", columns, None, total, chunks, reason)


# --------------------------------------------------------------------------- attributes


_strip = np.frompyfunc(str.strip, 1, 1)
_to_str = np.frompyfunc(str, 1, 1)


def _as_text(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values as stripped strings (object array, None for null or blank) and the null mask."""
    kind = raw.dtype.kind
    n = len(raw)
    out = np.full(n, None, dtype=object)
    if kind == "f":
        v = raw.astype(float)
        ok = np.isfinite(v)
        integral = ok & (v == np.floor(v)) & (np.abs(v) < 2**53)
        out[integral] = v[integral].astype(np.int64).astype(str)
        out[ok & ~integral] = v[ok & ~integral].astype(str)
        return out, ~ok
    if kind in "iu":
        return raw.astype(str).astype(object), np.zeros(n, dtype=bool)
    if kind == "b":
        return np.where(raw, "true", "false").astype(object), np.zeros(n, dtype=bool)
    if kind == "M":
        null = np.isnat(raw)
        out[~null] = np.datetime_as_string(raw[~null]).astype(object)
        return out, null
    null = np.asarray(pd.isna(raw), dtype=bool).copy()
    vals = raw[~null]
    if pd.api.types.infer_dtype(vals, skipna=False) not in ("string", "empty"):
        vals = _to_str(vals)
    vals = _strip(vals)
    blank = np.asarray(vals == "", dtype=bool)
    out[~null] = vals
    null[~null] = blank
    out[null] = None
    return out, null


def _coerce(f: Field, raw: np.ndarray, db_type: str | None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Coerce one column to ``f.type``.

    Returns the values (object array ready for COPY, None for null), the null mask, the mask of
    bad values and the reason template (``{v}`` is replaced by the raw value).
    """
    text, null = _as_text(raw)
    n = len(text)
    bad = np.zeros(n, dtype=bool)
    out = np.full(n, None, dtype=object)
    good = ~null
    t = pd.Series(text, dtype=object)
    if f.type == "text":
        out = text
        if f.choices:
            canon = {c.lower(): c for c in f.choices}
            mapped = t[good].str.lower().map(canon)
            bad[good] = mapped.isna().to_numpy()
            out = text.copy()
            out[good] = mapped.to_numpy(dtype=object)
            shown = ", ".join(f.choices)
            return out, null, bad, f"{f.name}: {{v}} is not one of {shown}"
        return out, null, bad, ""
    if f.type in ("int", "float"):
        num = pd.to_numeric(t[good], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(num)
        if f.type == "int":
            lo, hi = INT_RANGES.get(db_type or "bigint", INT_RANGES["bigint"])
            ok &= (num == np.floor(num)) & (num >= lo) & (num <= hi)
            vals = np.zeros(len(num), dtype=np.int64)
            vals[ok] = num[ok].astype(np.int64)
            what = f"not an integer (or out of the {db_type or 'bigint'} range)"
        else:
            vals = num
            what = "not a finite number"
        idx = np.flatnonzero(good)
        bad[idx[~ok]] = True
        out[idx[ok]] = vals[ok].tolist()
        return out, null, bad, f"{f.name}: {{v}} is {what}"
    if f.type == "date":
        s = t[good]
        ts = pd.to_datetime(s, errors="coerce", format="ISO8601")
        retry = ts.isna().to_numpy()
        if retry.any():
            ts[retry] = pd.to_datetime(s[retry], errors="coerce", format="%d/%m/%Y")
        ok = ts.notna().to_numpy()
        idx = np.flatnonzero(good)
        bad[idx[~ok]] = True
        out[idx[ok]] = ts[ok].dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
        return out, null, bad, f"{f.name}: {{v}} is not a date (YYYY-MM-DD or DD/MM/YYYY)"
    if f.type == "datetime":
        s = t[good]
        aware = s.str.contains(_AWARE, regex=True).to_numpy(dtype=bool)
        res = pd.Series(pd.NaT, index=s.index, dtype="datetime64[us, UTC]")
        if aware.any():
            res[aware] = pd.to_datetime(s[aware], errors="coerce", format="ISO8601", utc=True)
        if (~aware).any():
            naive = pd.to_datetime(s[~aware], errors="coerce", format="ISO8601")
            res[~aware] = naive.dt.tz_localize(LOCAL_TZ, ambiguous="NaT",
                                               nonexistent="NaT").dt.tz_convert("UTC")
        ok = res.notna().to_numpy()
        idx = np.flatnonzero(good)
        bad[idx[~ok]] = True
        out[idx[ok]] = res[ok].dt.strftime("%Y-%m-%d %H:%M:%S.%f+00").to_numpy(dtype=object)
        return out, null, bad, (f"{f.name}: {{v}} is not an ISO 8601 date-time "
                                f"(naive times are taken as {LOCAL_TZ})")
    if f.type == "bool":
        low = t[good].str.lower()
        is_true = low.isin(TRUE_WORDS).to_numpy()
        is_false = low.isin(FALSE_WORDS).to_numpy()
        idx = np.flatnonzero(good)
        bad[idx[~(is_true | is_false)]] = True
        out[idx[is_true]] = True
        out[idx[is_false]] = False
        return out, null, bad, f"{f.name}: {{v}} is not a boolean (true/false, yes/no, 1/0)"
    raise AssertionError(f"unknown field type {f.type}")  # pragma: no cover


# --------------------------------------------------------------------------- context


@dataclass
class _DbColumn:
    name: str
    data_type: str
    not_null: bool
    default: object  # literal default value, or None
    has_default: bool


@dataclass
class _Context:
    """What the validation needs from the database, read once before the reader starts."""

    columns: dict[str, _DbColumn]
    city: shapely.Geometry
    wards: list[tuple[str, shapely.Geometry]]
    existing_keys: set[tuple[object, ...]] | None  # None: the table was empty


def _literal_default(expr: str | None) -> tuple[bool, object]:
    if expr is None:
        return False, None
    m = re.fullmatch(r"'((?:[^']|'')*)'::[a-z ]+", expr)
    if m:
        return True, m.group(1).replace("''", "'")
    if re.fullmatch(r"-?[0-9]+(?:\.[0-9]+)?", expr):
        return True, expr
    return False, None


def _load_context(conn: psycopg.Connection, layer: Layer) -> _Context:
    columns: dict[str, _DbColumn] = {}
    for name, dtype, not_null, default in conn.execute(
            "SELECT column_name, data_type, is_nullable = 'NO', column_default "
            "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
            (layer.schema, layer.table)):
        literal, value = _literal_default(default)
        columns[name] = _DbColumn(name, dtype, not_null, value if literal else None,
                                  default is not None)
    if not columns:
        raise ImportRejected(f"table {_table(layer)} of layer {layer.id!r} does not exist; "
                             "run the migrations (huegis db migrate)", layer=layer.id)
    # Huế's territory: the city outline and every ward (the outline is clipped to the coast
    # more tightly than some ward polygons).
    row = conn.execute("SELECT ST_AsBinary(ST_Union(geom)) FROM admin_units "
                       "WHERE level IN ('city', 'ward')").fetchone()
    city = shapely.from_wkb(row[0]) if row and row[0] else shapely.box(*HUE_FALLBACK_BBOX)
    shapely.prepare(city)
    wards = [(code, shapely.from_wkb(wkb)) for code, wkb in conn.execute(
        "SELECT gso_code, ST_AsBinary(geom) FROM admin_units WHERE level = 'ward' "
        "ORDER BY gso_code")]
    for _, g in wards:
        shapely.prepare(g)
    existing = None
    if layer.key:
        table = _ident(layer)
        (nonempty,) = conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(
            table)).fetchone()
        if nonempty:
            keys = sql.SQL(", ").join(
                sql.SQL("{}" if layer.field(k).type == "int" else "{}::text").format(
                    sql.Identifier(k)) for k in layer.key)
            notnull = sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier(k))
                                            for k in layer.key)
            with conn.cursor() as cur:
                cur.execute(sql.SQL("SELECT {} FROM {} WHERE {}").format(keys, table, notnull))
                existing = set(cur)
    return _Context(columns, city, wards, existing)


# --------------------------------------------------------------------------- validation


@dataclass
class _Chunk:
    rows: np.ndarray  # row numbers (1-based) of the accepted rows, in COPY order
    data: bytes  # the accepted rows in COPY text format
    errors: list[tuple[int, str]]
    repaired: list[int]
    missing_geometry: int


class _Validator:
    """Turns chunks of the file into rows ready for COPY. Runs in the validation thread."""

    def __init__(self, layer: Layer, source: _Source, ctx: _Context, src_crs: CRS,
                 skip_invalid: bool) -> None:
        self.layer = layer
        self.source = source
        self.ctx = ctx
        self.skip_invalid = skip_invalid
        self.failed = False  # a rejected row was seen (stop emitting rows unless skipping)
        self.seen: dict[tuple[object, ...], int] = {}
        self.single = _TYPE_IDS[layer.geometry_type.removeprefix("Multi")]
        self.multi = _TYPE_IDS["Multi" + layer.geometry_type.removeprefix("Multi")]
        self.is_multi = layer.geometry_type.startswith("Multi")
        self.to_4326 = None
        self.src_name = src_crs.to_string()
        if not src_crs.equals(CRS.from_epsg(4326), ignore_axis_order=True):
            try:
                self.to_4326 = Transformer.from_crs(src_crs, 4326, always_xy=True)
            except Exception as e:  # pyproj.exceptions.ProjError
                raise ImportRejected(f"{source.name}: coordinates in {self.src_name} cannot be "
                                     f"transformed to EPSG:4326 ({e})", file=source.name
                                     ) from None
        self.to_area = Transformer.from_crs(4326, AREA_SRID, always_xy=True)
        # Areas are measured in EPSG:9214; a file already in it needs no second transform.
        self.area_from_source = src_crs.equals(CRS.from_epsg(AREA_SRID))
        self.ward_codes = {code for code, _ in ctx.wards}
        self.field_map = self._map_columns()
        computed = [n for n in ("area_m2", "ward_code", "source")
                    if layer.has_field(n) and n not in self.field_map.values()]
        self.copy_fields = [*self.field_map.values(), *computed]
        self.columns = [*self.copy_fields, layer.geometry_column]

    # -- whole-file checks

    def _map_columns(self) -> dict[str, str]:
        """File column → field name; raises on unknown columns and missing required ones."""
        layer = self.layer
        by_lower = {f.name.lower(): f.name for f in layer.fields}
        ignored = IGNORED_COLUMNS | {layer.id_column.lower(), layer.geometry_column.lower()}
        mapping: dict[str, str] = {}
        unknown: list[str] = []
        shapefile = self.source.kind.endswith("Shapefile")
        for col in self.source.columns:
            low = col.strip().lower()
            if shapefile and low not in by_lower and len(low) == DBF_NAME_LENGTH:
                # DBF field names are cut to 10 characters: map_sheet_no → map_sheet_
                cut = [f for f in by_lower if f.startswith(low)]
                if len(cut) == 1:
                    low = cut[0]
            if low in by_lower:
                if by_lower[low] in mapping.values():
                    raise ImportRejected(f"{self.source.name} has two columns for field "
                                         f"{by_lower[low]!r} (names differ only in case)",
                                         file=self.source.name)
                mapping[col] = by_lower[low]
            elif low not in ignored:
                unknown.append(col)
        if unknown:
            raise ImportRejected(
                f"{self.source.name} has columns that are not fields of layer {layer.id!r}: "
                f"{', '.join(unknown)}. Fields of {layer.id!r}: "
                f"{', '.join(f.name for f in layer.fields)}",
                file=self.source.name, unknown=unknown)
        missing = [f.name for f in layer.fields if f.required and f.name not in mapping.values()]
        if missing:
            raise ImportRejected(
                f"{self.source.name} lacks required field(s) {', '.join(missing)} of layer "
                f"{layer.id!r}", file=self.source.name, missing=missing)
        return mapping

    # -- per chunk

    def process(self, raw: _Raw) -> _Chunk:
        n = len(raw.geoms)
        rows = raw.offset + np.arange(1, n + 1)
        reasons: list[list[str] | None] = [None] * n

        def flag(where: np.ndarray, reason: str | Callable[[int], str]) -> None:
            """Record ``reason`` for rows ``where`` (a boolean mask or indices)."""
            idx = np.flatnonzero(where) if where.dtype == bool else where
            for i in idx:
                text = reason(i) if callable(reason) else reason
                if reasons[i] is None:
                    reasons[i] = [text]
                else:
                    reasons[i].append(text)

        geoms, repaired, missing, area = self._geometries(raw, flag)
        values, nulls = self._attributes(raw, geoms, area, flag)
        self._keys(values, nulls, rows, reasons, flag)

        bad = np.array([r is not None for r in reasons], dtype=bool)
        errors = [(int(rows[i]), "; ".join(reasons[i])) for i in np.flatnonzero(bad)]
        if errors:
            self.failed = True
        keep = ~bad
        if self.failed and not self.skip_invalid:
            keep[:] = False
        out = [values[c][keep] for c in self.copy_fields]
        out.append(self._hex_wkb(geoms[keep]))
        return _Chunk(rows[keep], _copy_block(out), errors, [int(r) for r in rows[repaired & keep]],
                      missing)

    def _hex_wkb(self, geoms: np.ndarray) -> np.ndarray:
        """Hex WKB for COPY, single parts promoted to the layer's multi type.

        The promotion is done on the WKB (a one-member multi is its member behind a 9-byte
        header), much cheaper than building shapely multi-geometries. No SRID is written: the
        ``geometry(…, 4326)`` typmod of every layer table sets it.
        """
        wkb = shapely.to_wkb(geoms, byte_order=1)
        hexed = np.array([b.hex() for b in wkb], dtype=object)
        if self.is_multi and len(geoms):
            single = shapely.get_type_id(geoms) == self.single
            header = f"01{self.multi:02x}00000001000000"
            hexed[single] = header + hexed[single]
        return hexed

    def _geometries(self, raw: _Raw, flag) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
        """Reproject, check, repair and promote; also the area (m², NaN if not known yet)."""
        layer = self.layer
        g = np.asarray(raw.geoms, dtype=object).copy()
        n = len(g)
        flag(raw.unreadable, self.source.unreadable_reason)
        missing = shapely.is_missing(g) & ~raw.unreadable
        flag(missing, "missing geometry")
        empty = ~missing & ~raw.unreadable & shapely.is_empty(g)
        flag(empty, "empty geometry")
        ok = ~shapely.is_missing(g) & ~empty
        if ok.any() and shapely.has_z(g[ok]).any():
            g[ok] = shapely.force_2d(g[ok])
        area = np.full(n, np.nan)
        if self.area_from_source and self.layer.has_field("area_m2") and ok.any():
            area[ok] = shapely.area(g[ok])
        if self.to_4326 is not None and ok.any():
            tr = self.to_4326
            g[ok] = shapely.transform(
                g[ok], lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))
        if ok.any():
            finite = np.zeros(n, dtype=bool)
            finite[ok] = np.isfinite(shapely.bounds(g[ok])).all(axis=1)
            flag(ok & ~finite, f"coordinates cannot be transformed from {self.src_name}")
            ok &= finite
        tid = np.full(n, -1)
        tid[ok] = shapely.get_type_id(g[ok])
        wrong = ok & ~np.isin(tid, (self.single, self.multi, 7))
        flag(wrong, lambda i: f"geometry is a {_TYPE_NAMES.get(int(tid[i]), '?')}; layer "
                              f"{layer.id!r} takes {layer.geometry_type} geometries")
        ok &= ~wrong
        valid = np.zeros(n, dtype=bool)
        valid[ok] = shapely.is_valid(g[ok])
        repaired = ok & ~valid
        fix = ok & (~valid | (tid == 7))
        area[fix] = np.nan
        for i in np.flatnonzero(fix):  # only invalid geometries and collections: rare
            fixed, why = self._repair(g[i], valid[i])
            if fixed is None:
                flag(np.array([i]), why)
                ok[i] = False
            else:
                g[i] = fixed
                tid[i] = shapely.get_type_id(fixed)
        if not self.is_multi:  # (single parts of multi layers are promoted in _hex_wkb)
            demote = ok & (tid == self.multi)
            if demote.any():
                parts = np.zeros(n, dtype=int)
                parts[demote] = shapely.get_num_geometries(g[demote])
                many = demote & (parts != 1)
                flag(many, lambda i: f"geometry has {parts[i]} parts; layer {layer.id!r} takes "
                                     f"single {layer.geometry_type} geometries")
                one = demote & (parts == 1)
                g[one] = shapely.get_geometry(g[one], 0)
                ok &= ~many
        inside = np.zeros(n, dtype=bool)
        inside[ok] = shapely.intersects(self.ctx.city, g[ok])
        flag(ok & ~inside, "outside Huế (intersects neither the city boundary nor any ward)")
        return g, repaired & ok & inside, int(missing.sum()), area

    def _repair(self, geom: shapely.Geometry, valid: bool
                ) -> tuple[shapely.Geometry | None, str]:
        """Make ``geom`` a valid geometry of the layer's type, or say why it cannot be."""
        reason = "" if valid else shapely.is_valid_reason(geom)
        fixed = geom
        if not valid:
            if self.single == 3:
                fixed = shapely.make_valid(geom, method="structure", keep_collapsed=False)
            else:
                fixed = shapely.make_valid(geom)
        parts = [p for p in shapely.get_parts(shapely.get_parts(fixed))
                 if shapely.get_type_id(p) == self.single and not p.is_empty]
        if not parts:
            if reason:
                return None, f"invalid geometry that cannot be repaired ({reason})"
            return None, (f"geometry collection without {self.layer.geometry_type} parts; "
                          f"layer {self.layer.id!r} takes {self.layer.geometry_type} geometries")
        if self.single == 3 and len(parts) > 1:
            result = shapely.union_all(parts)
            parts = list(shapely.get_parts(result))
        if len(parts) == 1 and not self.is_multi:
            result = parts[0]
        elif not self.is_multi:
            return None, (f"geometry has {len(parts)} parts after repair; layer "
                          f"{self.layer.id!r} takes single {self.layer.geometry_type} "
                          "geometries")
        else:
            maker = {0: shapely.MultiPoint, 1: shapely.MultiLineString,
                     3: shapely.MultiPolygon}[self.single]
            result = maker(parts)
        if not shapely.is_valid(result) or result.is_empty:
            return None, f"invalid geometry that cannot be repaired ({reason})"
        return result, ""

    def _attributes(self, raw: _Raw, geoms: np.ndarray, area: np.ndarray, flag
                    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Coerced values per field (object arrays) and their null masks."""
        layer = self.layer
        n = len(geoms)
        values: dict[str, np.ndarray] = {}
        nulls: dict[str, np.ndarray] = {}
        for col, name in self.field_map.items():
            f = layer.field(name)
            dbcol = self.ctx.columns.get(name)
            data = np.asarray(raw.attrs[col])
            out, null, bad, template = _coerce(f, data, dbcol and dbcol.data_type)
            if bad.any():
                shown = data.astype(object)
                flag(bad, lambda i, t=template, s=shown: t.replace("{v}", repr(_plain(s[i]))))
            values[name], nulls[name] = out, null | bad
        for name in ("area_m2", "ward_code", "source"):
            if layer.has_field(name) and name not in values:
                values[name] = np.full(n, None, dtype=object)
                nulls[name] = np.ones(n, dtype=bool)
        usable = ~shapely.is_missing(geoms)
        if "area_m2" in values:
            need = usable & nulls["area_m2"]
            known = need & ~np.isnan(area)
            values["area_m2"][known] = np.round(area[known], 2).tolist()
            need &= ~known
            if need.any():
                tr = self.to_area
                local = shapely.transform(
                    geoms[need], lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))
                values["area_m2"][need] = np.round(shapely.area(local), 2).tolist()
                need |= known
            else:
                need = known
            nulls["area_m2"] = nulls["area_m2"] & ~need
        if "ward_code" in values:
            codes = values["ward_code"]
            given = ~nulls["ward_code"]
            if self.ward_codes and given.any():
                unknown = given & ~np.isin(codes, list(self.ward_codes))
                flag(unknown, lambda i: f"ward_code: {codes[i]!r} is not a ward of Huế")
            need = usable & ~given
            if need.any() and self.ctx.wards:
                found = self._wards(geoms[need])
                codes[need] = found
                nulls["ward_code"][np.flatnonzero(need)[found != None]] = False  # noqa: E711
        if "source" in values:
            values["source"][nulls["source"]] = "import"
            nulls["source"] = np.zeros(n, dtype=bool)
        for f in layer.fields:
            dbcol = self.ctx.columns.get(f.name)
            if f.name not in values or dbcol is None:
                continue
            null = nulls[f.name]
            if not null.any():
                continue
            if f.required or (dbcol.not_null and not dbcol.has_default):
                flag(null, f"missing value for required field {f.name!r}")
            elif dbcol.not_null and dbcol.default is not None:
                values[f.name][null] = dbcol.default
                nulls[f.name] = np.zeros(n, dtype=bool)
        return values, nulls

    def _wards(self, geoms: np.ndarray) -> np.ndarray:
        """GSO code of the ward containing each geometry's point on surface (None if none)."""
        if self.single == 0:
            pts = geoms
        else:
            pts = shapely.point_on_surface(geoms)
        x, y = shapely.get_x(pts), shapely.get_y(pts)
        out = np.full(len(pts), None, dtype=object)
        todo = np.ones(len(pts), dtype=bool)
        for code, ward in self.ctx.wards:
            w, s, e, n = ward.bounds
            cand = np.flatnonzero(todo & (x >= w) & (x <= e) & (y >= s) & (y <= n))
            if len(cand):
                hit = cand[shapely.intersects_xy(ward, x[cand], y[cand])]
                out[hit] = code
                todo[hit] = False
        return out

    def _keys(self, values: dict[str, np.ndarray], nulls: dict[str, np.ndarray],
              rows: np.ndarray, reasons: list, flag) -> None:
        """Reject keys already in the table or already used by an earlier row of the file."""
        key = self.layer.key
        if not key or any(k not in values for k in key):
            return
        cand = np.array([r is None for r in reasons], dtype=bool)
        for k in key:  # NULLs never clash (as in a UNIQUE constraint)
            cand &= ~nulls[k]
        idx = np.flatnonzero(cand)  # rows already rejected do not claim their key
        keys = list(zip(*(values[k][idx] for k in key), strict=True))
        numbers = rows[idx].tolist()
        first = dict(zip(reversed(keys), reversed(numbers), strict=True))
        existing = self.ctx.existing_keys
        clash = {k for k in first if k in existing} if existing else set()
        earlier = {k for k in first if k in self.seen}
        self.seen.update((k, r) for k, r in first.items() if k not in earlier)
        if not clash and not earlier and len(first) == len(keys):
            return

        def show(i: int) -> str:
            return ", ".join(f"{k}={values[k][i]!r}" for k in key)

        for i, k, row in zip(idx.tolist(), keys, numbers, strict=True):
            if k in clash:
                flag(np.array([i]), f"key ({show(i)}) already exists in layer "
                                    f"{self.layer.id!r}")
            elif k in earlier or first[k] != row:
                flag(np.array([i]), f"duplicate key ({show(i)}) of row {self.seen[k]}")


_COPY_SPECIAL = ("\\", "\t", "\n", "\r")
_COPY_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_escape = np.frompyfunc(lambda v: v.translate(_COPY_ESCAPE), 1, 1)


def _copy_block(columns: list[np.ndarray]) -> bytes:
    r"""Rows (one object array per column, None for NULL) in PostgreSQL COPY text format.

    >>> _copy_block([np.array(["a\tb", None], dtype=object), np.array([1.5, 2], dtype=object)])
    b'a\\tb\t1.5\n\\N\t2\n'
    """
    if not len(columns) or not len(columns[0]):
        return b""
    texts: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    for col in columns:
        null = np.asarray(pd.isna(col), dtype=bool)
        vals = col[~null] if null.any() else col
        if pd.api.types.infer_dtype(vals, skipna=False) not in ("string", "empty"):
            vals = _to_str(vals)
        text = np.full(len(col), "\\N", dtype=object)
        text[~null] = vals
        texts.append(text)
        masks.append(null)
    block = "\n".join(map("\t".join, zip(*texts, strict=True))) + "\n"
    n, k = len(columns[0]), len(columns)
    markers = sum(int(m.sum()) for m in masks)  # each NULL is one backslash: \N
    if (block.count("\\") != markers or "\r" in block or block.count("\n") != n
            or block.count("\t") != n * (k - 1)):  # some value holds a special character
        for text, null in zip(texts, masks, strict=True):
            if (~null).any():
                text[~null] = _escape(text[~null])
        block = "\n".join(map("\t".join, zip(*texts, strict=True))) + "\n"
    return block.encode()


def _plain(v: object) -> object:
    return v.item() if isinstance(v, np.generic) else v


# --------------------------------------------------------------------------- driver


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


class _Background:
    """Iterate over ``items`` in a thread; iterating over this yields them (errors re-raised).

    Every stage of a pipeline shares ``stop``: once it is set, all of them wind down.
    """

    def __init__(self, items: Iterator, stop: threading.Event, name: str,
                 maxsize: int = 2) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._stop = stop
        self._thread = threading.Thread(target=self._run, args=(items,), name=name,
                                        daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, items: Iterator) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as e:  # handed to the consuming thread
            self._put(_Failure(e))

    def __iter__(self) -> Iterator:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def join(self) -> None:
        self._thread.join()


def _source_crs(source: _Source, srid: int | None) -> tuple[CRS, int]:
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


def _summary(layer: Layer, source: _Source, errors: list[tuple[int, str]]) -> str:
    errors = sorted(errors)
    shown = "\n".join(f"  row {r}: {why}" for r, why in errors[:MAX_LISTED])
    more = f"\n  … and {len(errors) - MAX_LISTED} more" if len(errors) > MAX_LISTED else ""
    return (f"{source.name}: {len(errors)} of {source.total} rows rejected for layer "
            f"{layer.id!r}; nothing was written (use --skip-invalid to import the other "
            f"rows):\n{shown}{more}")


def _db_rejection(err: psycopg.Error, layer: Layer, written: list[np.ndarray]
                  ) -> ImportRejected:
    diag = err.diag
    row = None
    m = re.search(r"COPY [^,]+, line (\d+)", diag.context or "")
    if m:
        line = int(m.group(1))
        done = 0
        for part in written:
            if line <= done + len(part):
                row = int(part[line - done - 1])
                break
            done += len(part)
    where = f"row {row}: " if row else ""
    detail = f" ({diag.message_detail})" if diag.message_detail else ""
    if isinstance(err, psycopg.errors.UniqueViolation):
        what = "clashes with an existing row"
    else:
        what = "was refused by the database"
    return ImportRejected(f"import into {layer.id!r} {what}; nothing was written: {where}"
                          f"{diag.message_primary or err}{detail}", layer=layer.id, row=row)


def import_file(conn: psycopg.Connection, path: Path | str, layer: Layer | str,
                crs: str | int | None = None, *, skip_invalid: bool = False,
                progress: Callable[[int], None] | None = None,
                on_total: Callable[[int], None] | None = None) -> ImportReport:
    """Import a vector file into a layer, all or nothing.

    Parameters
    ----------
    conn : psycopg.Connection
        Connection whose transaction receives the rows; the caller commits. The import runs
        in a SAVEPOINT: when it raises, nothing was written and the transaction is usable.
        (On an autocommit connection the import is its own transaction.)
    path : Path
        ``.geojson``/``.json``, ``.gpkg``, ``.zip`` (zipped Shapefile), ``.shp`` or ``.csv``
        (lon/lat columns named lon|lng|longitude|x and lat|latitude|y, or a WKT column named
        wkt|geometry|geom; UTF-8, comma-separated).
    layer : Layer or str
        Target layer of the catalog (must be importable).
    crs : str or int, optional
        CRS of the coordinates (see :func:`gis.crs.parse_crs`), overriding the file's. A CSV
        without it is EPSG:4326; other files must carry a CRS.
    skip_invalid : bool
        Leave out the rows that fail validation (reported in ``skipped``) instead of
        rejecting the file.
    progress : callable, optional
        Called with the number of rows handled (written or skipped) since the last call.
    on_total : callable, optional
        Called once with the number of features in the file, before the rows are handled.

    Returns
    -------
    ImportReport

    Raises
    ------
    LayerNotFound
        ``layer`` is not a vector layer of the catalog.
    UnknownCRS
        ``crs`` is not a supported CRS.
    ImportRejected
        The layer is not importable; the file is missing, empty, unreadable or of an
        unsupported type; it has no geometry or no CRS; columns are unknown or required
        fields missing; or rows are invalid (wrong type, unrepairable geometry, outside Huế,
        bad values, duplicate keys within the file or with existing rows) and
        ``skip_invalid`` is false. The message names the rows (1-based) and the problems;
        ``details["errors"]`` lists them all. A row refused by a database constraint that the
        catalog does not declare (e.g. ``beds >= 0``) rejects the import with its row number,
        even with ``skip_invalid``.

    Examples
    --------
    With an open connection (the tests run this against PostGIS)::

        report = import_file(conn, Path("parcels.gpkg"), "parcels", "EPSG:9214")
        conn.commit()
    """
    started = time.perf_counter()
    target = _importable(layer)
    srid = parse_crs(crs) if crs is not None else None
    path = Path(path)
    source = _open(path, target)
    src_crs, source_srid = _source_crs(source, srid)
    if on_total:
        on_total(source.total)

    if not conn.autocommit and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        conn.execute("SELECT 1")  # open the caller's transaction: the block below is a savepoint
    errors: list[tuple[int, str]] = []
    repaired: list[int] = []
    written: list[np.ndarray] = []
    missing_geometry = 0
    with conn.transaction():
        ctx = _load_context(conn, target)
        validator = _Validator(target, source, ctx, src_crs, skip_invalid)
        # Three stages side by side: read (GDAL), validate (numpy/shapely/pyproj, which release
        # the interpreter lock), and COPY here, while PostgreSQL ingests on its own core.
        stop = threading.Event()
        raws = _Background(source.chunks(), stop, "huegis-import-read")
        chunks = _Background((validator.process(raw) for raw in raws), stop,
                             "huegis-import-validate")
        copy = copy_statement(_table(target), validator.columns)
        inserted = 0
        try:
            with conn.cursor() as cur, cur.copy(copy) as cp:
                for item in chunks:
                    errors.extend(item.errors)
                    repaired.extend(item.repaired)
                    missing_geometry += item.missing_geometry
                    if len(item.rows):
                        written.append(item.rows)
                        cp.write(item.data)
                        inserted += len(item.rows)
                    if progress:
                        progress(len(item.rows) + len(item.errors))
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as e:
            raise _db_rejection(e, target, written) from None
        finally:
            stop.set()
            chunks.join()
            raws.join()
        if missing_geometry == source.total:
            raise ImportRejected(f"{source.name} has no geometries (every feature's geometry "
                                 "is empty)", file=source.name)
        if errors and not skip_invalid:
            raise ImportRejected(_summary(target, source, errors), layer=target.id,
                                 file=source.name, errors=sorted(errors))
    return ImportReport(layer=target.id, read=source.total, inserted=inserted,
                        repaired=sorted(repaired), skipped=sorted(errors),
                        source_crs=source_srid, seconds=time.perf_counter() - started)
