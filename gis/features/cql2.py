"""CQL2 filters (OGC API Features Part 3): parsed by pygeofilter, compiled here to PostGIS SQL.

The compiler is a small visitor over pygeofilter's AST. Values are always bound ``$n``
parameters; identifiers come only from the catalog (the fields the caller may see, and the
geometry). A private or unknown property is a 400 like any other unknown name, so a filter
cannot probe hidden data.

pygeofilter 0.4's CQL2-text grammar writes temporal predicates infix and lacks ``S_DWITHIN``
and open interval ends; :func:`parse_filter` extends its grammar with the function forms of
the CQL2 standard (``T_AFTER(a, TIMESTAMP(...))``), ``S_DWITHIN(geom, POINT(...), 100,
meters)`` and ``INTERVAL('2025-01-01', '..')``, keeping pygeofilter's transformer and AST.

>>> b = SQLParams()
>>> compile_filter(parse_filter("land_use = 'ODT' AND area_m2 > 100"),
...                Scope(VECTOR_LAYERS['parcels'], ['land_use', 'area_m2']), b)
'(t."land_use" = $1 AND t."area_m2" > $2)'
>>> b.values
['ODT', 100.0]
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import shapely.geometry
from lark import Lark, v_args
from lark import logger as lark_logger
from lark.exceptions import LarkError
from pygeofilter import ast, values
from pygeofilter.cql2 import TEMPORAL_PREDICATES_MAP
from pygeofilter.parsers.cql2_json import parse as parse_cql2_json_tree
from pygeofilter.parsers.cql2_text import parser as cql2_text_module

from gis.errors import InvalidParameter
from gis.features.request import CRS84, ApiCRS, TimeRange, coerce, time_range
from gis.sqlbuild import ident
from layers import VECTOR_LAYERS, Layer  # noqa: F401 (doctest)

lark_logger.setLevel(logging.WARNING)  # pygeofilter sets lark's logger to DEBUG on import

GEOMETRY_NAMES = ("geom", "geometry")
UNITS_TO_METRES = {"m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0, "metres": 1.0,
                   "km": 1000.0, "kilometer": 1000.0, "kilometers": 1000.0,
                   "kilometre": 1000.0, "kilometres": 1000.0}
# Index prefilter for S_DWITHIN: degrees that certainly cover d metres below 60° latitude.
METRES_PER_DEGREE_AT_60 = 55_000.0
MAX_FILTER_LENGTH = 20_000


class InvalidFilter(InvalidParameter):
    code = "InvalidParameterValue"


@dataclass
class SQLParams:
    """Bound parameters of one statement: ``add(value)`` returns its ``$n``."""

    values: list[object] = field(default_factory=list)

    def add(self, value: object) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


@dataclass(frozen=True)
class Scope:
    """What a filter may name: the layer's fields the caller may see, and the geometry."""

    layer: Layer
    visible: list[str]
    alias: str = "t"
    crs: ApiCRS = CRS84  # filter-crs: CRS of the geometry literals

    def column(self, name: str) -> str:
        return f"{self.alias}.{ident(name)}"


class TimeIntersects(ast.TimeOverlaps):
    """CQL2 ``T_INTERSECTS`` (pygeofilter maps it onto T_OVERLAPS; we keep it apart).

    Recognised by its ``cql2_op`` rather than by class identity: lark's parser cache may
    hand back nodes of another import of this module (doctests import it a second time).
    """

    cql2_op = "t_intersects"


class DistanceWithin(ast.DistanceWithin):
    """``S_DWITHIN`` from the extended grammar."""


# ------------------------------------------------------------------------------- parsing
_EXTRA_RULES = r"""
?temporal_predicate: expression _binary_temporal_predicate_func expression -> binary_temporal_predicate
                   | _binary_temporal_predicate_func "(" expression "," expression ")" -> temporal_function
?spatial_predicate: _binary_spatial_predicate_func "(" expression "," expression ")" -> binary_spatial_predicate
                  | "S_DWITHIN"i "(" expression "," expression "," full_number ["," distance_units] ")" -> dwithin
                  | "BBOX"i "(" expression "," full_number "," full_number "," full_number "," full_number [ ","  SINGLE_QUOTED] ")" -> bbox_spatial_predicate
!distance_units: "meters"i | "metres"i | "m"i | "kilometers"i | "kilometres"i | "km"i
?timestamp: "TIMESTAMP"i "(" "'" DATETIME "'" ")"
?date: "DATE"i "(" "'" DATE "'" ")"
interval: "INTERVAL"i "(" _bound "," _bound ")"
_bound: "'" DATETIME "'" | "'" DATE "'" | OPEN_END
OPEN_END: "'..'"
"""  # noqa: E501 (grammar lines)


@v_args(meta=False, inline=True)
class _Transformer(cql2_text_module.CQLTransformer):
    def temporal_function(self, op: Any, lhs: Any, rhs: Any) -> ast.Node:
        name = str(op).lower()
        if name == "t_intersects":
            return TimeIntersects(lhs, rhs)
        return TEMPORAL_PREDICATES_MAP[name](lhs, rhs)

    def binary_temporal_predicate(self, lhs: Any, op: Any, rhs: Any) -> ast.Node:
        return self.temporal_function(op, lhs, rhs)

    def dwithin(self, lhs: Any, rhs: Any, distance: Any, units: Any = "meters") -> ast.Node:
        return DistanceWithin(lhs, rhs, distance, str(units).lower())

    def distance_units(self, value: Any) -> str:
        return str(value)

    def OPEN_END(self, _: Any) -> None:  # noqa: N802 (lark terminal name)
        return None

    def interval(self, start: Any, end: Any) -> values.Interval:
        return values.Interval(start, end)


def _drop_rules(grammar: str, names: tuple[str, ...]) -> str:
    """pygeofilter's grammar without the rules ``names`` (each up to the next blank line)."""
    out, skipping = [], False
    for line in grammar.splitlines():
        head = line.split(":", 1)[0].strip().lstrip("?!")
        if line and not line[0].isspace() and not line.startswith("|"):
            skipping = head in names
        elif not line.strip():
            skipping = False
        if not skipping:
            out.append(line)
    return "\n".join(out)


@functools.cache
def _text_parser() -> Lark:
    """The extended CQL2-text parser (LALR tables cached on disk by lark: ~0.1 s to load
    instead of ~1 s to build, once per process)."""
    here = os.path.dirname(cql2_text_module.__file__)
    with open(os.path.join(here, "grammar.lark"), encoding="utf-8") as f:
        base = f.read()
    grammar = _drop_rules(base, ("temporal_predicate", "spatial_predicate", "timestamp",
                                 "interval", "date")) + _EXTRA_RULES
    return Lark(grammar, parser="lalr", maybe_placeholders=False, transformer=_Transformer(),
                cache=True,
                import_paths=[os.path.dirname(here)])


def _json_extensions(node: Any) -> Any:
    """Pre-walk CQL2-JSON: ``s_dwithin`` and ``t_intersects`` become our AST nodes (the rest
    is pygeofilter's job)."""
    if isinstance(node, list):
        return [_json_extensions(n) for n in node]
    if not isinstance(node, dict):
        return node
    op = node.get("op")
    if op in ("s_dwithin", "t_intersects"):
        args = node.get("args")
        if not isinstance(args, list) or len(args) < 2:
            raise InvalidFilter(f"{op} needs its arguments as a list")
        parts = [parse_cql2_json_tree(_json_extensions(a)) if isinstance(a, dict) else a
                 for a in args]
        if op == "t_intersects":
            return TimeIntersects(parts[0], parts[1])
        if len(parts) not in (3, 4):
            raise InvalidFilter("s_dwithin takes a geometry, a geometry, a distance and units")
        return DistanceWithin(parts[0], parts[1], parts[2],
                              str(parts[3] if len(parts) == 4 else "meters").lower())
    return {k: _json_extensions(v) for k, v in node.items()}


def warm_up() -> None:
    """Load the CQL2-text parser now (at start-up) rather than on the first filter."""
    _text_parser()


def parse_filter(text: str, lang: str = "cql2-text") -> ast.Node:
    """Parse a CQL2 filter (``cql2-text`` or ``cql2-json``) into pygeofilter's AST (400 on
    any syntax error).

    >>> parse_filter("T_AFTER(created_at, TIMESTAMP('2025-01-01T00:00:00Z'))")
    TimeAfter(lhs=ATTRIBUTE created_at, rhs=datetime.datetime(2025, 1, 1, 0, 0, tzinfo=...))
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidFilter(f"filter longer than {MAX_FILTER_LENGTH} characters")
    try:
        if lang == "cql2-text":
            return _text_parser().parse(text)
        if lang == "cql2-json":
            tree = json.loads(text)
            return parse_cql2_json_tree(_json_extensions(tree))
    except InvalidParameter:
        raise
    except (LarkError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            RecursionError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidFilter(f"filter is not valid {lang}: {first[:300]}") from None
    raise InvalidFilter(f"filter-lang must be cql2-text or cql2-json, got {lang!r}")


# ----------------------------------------------------------------------------- compiling
_CMP = {ast.Equal: "=", ast.NotEqual: "<>", ast.LessThan: "<", ast.LessEqual: "<=",
        ast.GreaterThan: ">", ast.GreaterEqual: ">="}
_SPATIAL = {ast.GeometryIntersects: "ST_Intersects", ast.GeometryDisjoint: "ST_Disjoint",
            ast.GeometryContains: "ST_Contains", ast.GeometryWithin: "ST_Within",
            ast.GeometryTouches: "ST_Touches", ast.GeometryCrosses: "ST_Crosses",
            ast.GeometryOverlaps: "ST_Overlaps", ast.GeometryEquals: "ST_Equals"}


def compile_filter(node: Any, scope: Scope, params: SQLParams) -> str:
    """SQL boolean expression for a parsed filter (identifiers from ``scope``, values in
    ``params``)."""
    try:
        return _Compiler(scope, params).visit(node)
    except RecursionError:
        raise InvalidFilter("filter is nested too deeply") from None


@dataclass
class _Compiler:
    scope: Scope
    params: SQLParams

    def visit(self, node: Any) -> str:  # noqa: C901 (one branch per node type)
        if isinstance(node, ast.And | ast.Or):
            op = "AND" if isinstance(node, ast.And) else "OR"
            return f"({self.visit(node.lhs)} {op} {self.visit(node.rhs)})"
        if isinstance(node, ast.Not):
            return f"NOT ({self.visit(node.sub_node)})"
        if isinstance(node, ast.Include):
            return "FALSE" if node.not_ else "TRUE"
        if type(node) in _CMP:
            return self._comparison(node.lhs, _CMP[type(node)], node.rhs)
        if isinstance(node, ast.Like):
            col = self._text_expr(node.lhs)
            op = ("NOT " if node.not_ else "") + ("ILIKE" if node.nocase else "LIKE")
            if not isinstance(node.pattern, str):
                raise InvalidFilter("LIKE needs a string pattern")
            return f"{col} {op} {self.params.add(node.pattern)}"
        if isinstance(node, ast.Between):
            f = self._field(node.lhs)
            lo, hi = (self.params.add(coerce(f, v)) for v in (node.low, node.high))
            return (f"{self.scope.column(f.name)} {'NOT ' if node.not_ else ''}BETWEEN "
                    f"{lo} AND {hi}")
        if isinstance(node, ast.In):
            f = self._field(node.lhs)
            items = [coerce(f, v) for v in node.sub_nodes]
            neg = "NOT " if node.not_ else ""
            return f"{neg}({self.scope.column(f.name)} = ANY({self.params.add(items)}))"
        if isinstance(node, ast.IsNull):
            return f"{self._any_column(node.lhs)} IS {'NOT ' if node.not_ else ''}NULL"
        if isinstance(node, DistanceWithin | ast.DistanceWithin):
            return self._dwithin(node)
        if type(node) in _SPATIAL:
            a, b = self._geometry(node.lhs), self._geometry(node.rhs)
            return f"{_SPATIAL[type(node)]}({a}, {b})"
        if isinstance(node, ast.BBox):
            crs = self.scope.crs
            if node.crs:
                from gis.features.request import parse_api_crs
                crs = parse_api_crs(node.crs)
            env = values.Envelope(node.minx, node.maxx, node.miny, node.maxy)
            return f"ST_Intersects({self._geometry(node.lhs)}, {self._literal(env, crs)})"
        if isinstance(node, ast.TemporalPredicate):
            return self._temporal(node)
        raise InvalidFilter(f"this server does not support {type(node).__name__} in filters")

    # -- names
    def _field(self, node: Any):
        if not isinstance(node, ast.Attribute):
            raise InvalidFilter(f"expected a property name, got {node!r}")
        from gis.features.request import field_named
        return field_named(self.scope.layer, node.name, self.scope.visible, "property")

    def _is_geometry(self, node: Any) -> bool:
        return isinstance(node, ast.Attribute) and node.name in (
            *GEOMETRY_NAMES, self.scope.layer.geometry_column)

    def _any_column(self, node: Any) -> str:
        if self._is_geometry(node):
            return self.scope.column(self.scope.layer.geometry_column)
        return self.scope.column(self._field(node).name)

    def _text_expr(self, node: Any) -> str:
        if isinstance(node, ast.Function) and node.name == "lower" and len(node.arguments) == 1:
            return f"lower({self._text_expr(node.arguments[0])})"
        f = self._field(node)
        if f.type != "text":
            raise InvalidFilter(f"property {f.name!r} is not text")
        return self.scope.column(f.name)

    # -- comparisons
    def _comparison(self, lhs: Any, op: str, rhs: Any) -> str:
        if not isinstance(lhs, ast.Attribute | ast.Function) and isinstance(
                rhs, ast.Attribute | ast.Function):
            flip = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}
            return self._comparison(rhs, flip.get(op, op), lhs)
        if isinstance(lhs, ast.Function):
            left = self._text_expr(lhs)
            if isinstance(rhs, ast.Function) and rhs.name == "lower" and len(rhs.arguments) == 1:
                inner = rhs.arguments[0]
                right = (self._text_expr(rhs) if isinstance(inner, ast.Attribute)
                         else f"lower({self.params.add(self._string(inner))})")
            else:
                right = f"lower({self.params.add(self._string(rhs))})"
            return f"{left} {op} {right}"
        f = self._field(lhs)
        if isinstance(rhs, ast.Attribute):
            g = self._field(rhs)
            kinds = [{"int": "number", "float": "number", "date": "time",
                      "datetime": "time"}.get(x.type, x.type) for x in (f, g)]
            if kinds[0] != kinds[1]:
                raise InvalidFilter(f"cannot compare {f.name!r} ({f.type}) with {g.name!r} "
                                    f"({g.type})")
            return f"{self.scope.column(f.name)} {op} {self.scope.column(g.name)}"
        if isinstance(rhs, ast.Node):
            raise InvalidFilter(f"cannot compare {f.name!r} with {rhs!r}")
        if f.type in ("date", "datetime") and isinstance(rhs, date):
            return self._time_compare(f.name, op, time_range(rhs))
        return f"{self.scope.column(f.name)} {op} {self.params.add(coerce(f, rhs))}"

    @staticmethod
    def _string(value: Any) -> str:
        if not isinstance(value, str):
            raise InvalidFilter(f"CASEI needs a string, got {value!r}")
        return value

    # -- geometry
    def _geometry(self, node: Any) -> str:
        if self._is_geometry(node):
            return self.scope.column(self.scope.layer.geometry_column)
        if isinstance(node, values.Geometry | values.Envelope):
            return self._literal(node, self.scope.crs)
        raise InvalidFilter(f"expected the geometry or a geometry literal, got {node!r}")

    def _literal(self, node: values.Geometry | values.Envelope, crs: ApiCRS) -> str:
        geojson = node.__geo_interface__
        try:
            geom = shapely.geometry.shape(geojson)
        except (ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
            raise InvalidFilter(f"invalid geometry in filter: {exc}") from None
        if geom.is_empty or not all(math.isfinite(c) for c in geom.bounds):
            raise InvalidFilter("empty or non-finite geometry in filter")
        text = self.params.add(json.dumps(shapely.geometry.mapping(geom)))
        g = f"ST_SetSRID(ST_GeomFromGeoJSON({text}::text), {int(crs.srid)})"
        if crs.lat_first:
            return f"ST_FlipCoordinates({g})"
        return g if crs.srid == 4326 else f"ST_Transform({g}, 4326)"

    def _dwithin(self, node: ast.DistanceWithin) -> str:
        units = str(node.units or "meters").lower()
        if units not in UNITS_TO_METRES:
            raise InvalidFilter(f"S_DWITHIN distance units must be metres or km, got {units!r}")
        if isinstance(node.distance, bool) or not isinstance(node.distance, int | float):
            raise InvalidFilter("S_DWITHIN needs a numeric distance")
        metres = float(node.distance) * UNITS_TO_METRES[units]
        if not (math.isfinite(metres) and 0 <= metres <= 1_000_000):
            raise InvalidFilter("S_DWITHIN distance must be between 0 and 1,000 km")
        a, b = self._geometry(node.lhs), self._geometry(node.rhs)
        deg = self.params.add(metres / METRES_PER_DEGREE_AT_60)
        m = self.params.add(metres)
        # Index-assisted prefilter in degrees, then the exact geodesic test in metres.
        return (f"(ST_DWithin({a}, {b}, {deg}::float8) AND "
                f"ST_DWithin({a}::geography, {b}::geography, {m}::float8))")

    # -- time
    def _time_value(self, value: Any) -> TimeRange:
        if isinstance(value, values.Interval):
            for v in (value.start, value.end):
                if v is not None and not isinstance(v, date):
                    raise InvalidFilter("interval bounds must be dates or timestamps")
            return time_range(value.start, value.end, interval=True)
        if isinstance(value, date):
            return time_range(value)
        raise InvalidFilter(f"expected a DATE, TIMESTAMP or INTERVAL, got {value!r}")

    def _temporal(self, node: ast.TemporalPredicate) -> str:
        f = self._field(node.lhs)
        if f.type not in ("date", "datetime"):
            raise InvalidFilter(f"property {f.name!r} is not a date or timestamp")
        r = self._time_value(node.rhs)
        col = self.scope.column(f.name)
        if getattr(node, "cql2_op", None) == "t_intersects":
            return self._time_compare(f.name, "in", r)
        if isinstance(node, ast.TimeEquals):
            if not r.is_instant and r.lo is not None and r.hi is not None and (
                    r.hi_inclusive or not isinstance(node.rhs, date)):
                raise InvalidFilter("T_EQUALS of an instant property needs an instant")
            return self._time_compare(f.name, "in", r)
        if isinstance(node, ast.TimeDisjoint):
            return f"({col} IS NOT NULL AND NOT {self._time_compare(f.name, 'in', r)})"
        if isinstance(node, ast.TimeBefore):
            return "FALSE" if r.lo is None else f"{col} < {self._ts(r.lo)}"
        if isinstance(node, ast.TimeAfter):
            if r.hi is None:
                return "FALSE"
            return f"{col} {'>' if r.hi_inclusive else '>='} {self._ts(r.hi)}"
        if isinstance(node, ast.TimeDuring):
            parts = [f"{col} > {self._ts(r.lo)}"] if r.lo is not None else []
            if r.hi is not None:
                parts.append(f"{col} < {self._ts(r.hi)}")
            return "(" + " AND ".join(parts or [f"{col} IS NOT NULL"]) + ")"
        raise InvalidFilter(f"{type(node).__name__} needs interval-valued properties; the "
                            "properties of this API are instants")

    def _ts(self, value: datetime) -> str:
        return f"{self.params.add(value)}::timestamptz"

    def _time_compare(self, name: str, op: str, r: TimeRange) -> str:
        """``col`` against a time range: ``in`` (intersects) or a comparison operator."""
        col = self.scope.column(name)
        if op == "in":
            parts = [f"{col} >= {self._ts(r.lo)}"] if r.lo is not None else []
            if r.hi is not None:
                parts.append(f"{col} {'<=' if r.hi_inclusive else '<'} {self._ts(r.hi)}")
            return "(" + " AND ".join(parts or [f"{col} IS NOT NULL"]) + ")"
        assert r.lo is not None and r.hi is not None
        if r.is_instant:
            return f"{col} {op} {self._ts(r.lo)}"
        # A date compared with a timestamp column: the whole day [lo, hi).
        if op == "=":
            return self._time_compare(name, "in", r)
        if op == "<>":
            return f"NOT {self._time_compare(name, 'in', r)}"
        if op in ("<", ">="):
            return f"{col} {op} {self._ts(r.lo)}"
        return f"{col} {'>=' if op == '>' else '<'} {self._ts(r.hi)}"
