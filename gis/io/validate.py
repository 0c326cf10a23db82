"""Validation of an import's chunks: columns, geometries, attributes, wards and natural keys.

:class:`Validator` maps the file's columns to the layer's fields once, then turns every chunk
of the file into the accepted rows in COPY format and the problems of the others:
geometries are reprojected to EPSG:4326, checked, repaired and promoted to the layer's type;
attributes are coerced to the field types; the fields the catalog marks ``derive`` are filled
in when a row lacks them (``"area"``: m² in EPSG:9214; ``"ward"``: the ward containing the
point on surface), and ``source``; keys are checked against the table and the rows before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import CRS, Transformer

from gis.errors import ImportRejected
from gis.io.context import Context
from gis.io.copy import copy_block
from gis.io.read import Raw, Source
from gis.io.values import coerce, plain
from layers import Layer

AREA_SRID = 9214  # VN-2000 / TM-3 107-00: areas of parcels are measured in it
DBF_NAME_LENGTH = 10  # Shapefile attribute names are at most 10 characters
# Identifier and geometry columns that are never attributes.
IGNORED_COLUMNS = frozenset({"id", "fid", "ogc_fid", "geometry", "geom", "the_geom",
                             "wkb_geometry", "wkt"})

_TYPE_IDS = {"Point": 0, "LineString": 1, "Polygon": 3, "MultiPoint": 4, "MultiLineString": 5,
             "MultiPolygon": 6}
_TYPE_NAMES = {0: "Point", 1: "LineString", 2: "LinearRing", 3: "Polygon", 4: "MultiPoint",
               5: "MultiLineString", 6: "MultiPolygon", 7: "GeometryCollection"}


@dataclass
class Chunk:
    """One chunk of the file, validated: the accepted rows for COPY and the problems."""

    rows: np.ndarray  # row numbers (1-based) of the accepted rows, in COPY order
    data: bytes  # the accepted rows in COPY text format
    errors: list[tuple[int, str]]
    repaired: list[int]
    missing_geometry: int


class Validator:
    """Turns chunks of the file into rows ready for COPY. Runs in the validation thread."""

    def __init__(self, layer: Layer, source: Source, ctx: Context, src_crs: CRS,
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
        # Fields the catalog says are derived from the geometry when a row lacks them.
        self.area_field = next((f.name for f in layer.fields if f.derive == "area"), None)
        self.ward_field = next((f.name for f in layer.fields if f.derive == "ward"), None)
        self.derived = [n for n in (self.area_field, self.ward_field, "source")
                        if n and layer.has_field(n)]
        computed = [n for n in self.derived if n not in self.field_map.values()]
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

    def process(self, raw: Raw) -> Chunk:
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
        return Chunk(rows[keep], copy_block(out), errors, [int(r) for r in rows[repaired & keep]],
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

    def _geometries(self, raw: Raw, flag) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
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
        if self.area_from_source and self.area_field and ok.any():
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

    def _attributes(self, raw: Raw, geoms: np.ndarray, area: np.ndarray, flag
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
            out, null, bad, template = coerce(f, data, dbcol and dbcol.data_type)
            if bad.any():
                shown = data.astype(object)
                flag(bad, lambda i, t=template, s=shown: t.replace("{v}", repr(plain(s[i]))))
            values[name], nulls[name] = out, null | bad
        for name in self.derived:
            if name not in values:
                values[name] = np.full(n, None, dtype=object)
                nulls[name] = np.ones(n, dtype=bool)
        usable = ~shapely.is_missing(geoms)
        if (af := self.area_field) is not None:
            need = usable & nulls[af]
            known = need & ~np.isnan(area)
            values[af][known] = np.round(area[known], 2).tolist()
            need &= ~known
            if need.any():
                tr = self.to_area
                local = shapely.transform(
                    geoms[need], lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))
                values[af][need] = np.round(shapely.area(local), 2).tolist()
                need |= known
            else:
                need = known
            nulls[af] = nulls[af] & ~need
        if (wf := self.ward_field) is not None:
            codes = values[wf]
            given = ~nulls[wf]
            if self.ward_codes and given.any():
                unknown = given & ~np.isin(codes, list(self.ward_codes))
                flag(unknown, lambda i: f"{wf}: {codes[i]!r} is not a ward of Huế")
            need = usable & ~given
            if need.any() and self.ctx.wards:
                found = self._wards(geoms[need])
                codes[need] = found
                nulls[wf][np.flatnonzero(need)[found != None]] = False  # noqa: E711
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

