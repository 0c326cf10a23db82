"""CQL2 filters (OGC API Features Part 3): parsed by pygeofilter, compiled here to PostGIS SQL.

The compiler is a small visitor over pygeofilter's AST. Values are always bound ``$n``
parameters; identifiers come only from the catalog (the fields the caller may see, and the
geometry). A private or unknown property is a 400 like any other unknown name, so a filter
cannot probe hidden data.

pygeofilter 0.4's CQL2-text grammar writes temporal predicates infix, under older names, and
lacks ``S_DWITHIN``, open interval ends and intervals of properties; :func:`parse_filter`
extends its grammar with the function forms of the CQL2 standard (all fifteen temporal
functions, ``T_AFTER(a, TIMESTAMP(...))``), ``S_DWITHIN(geom, POINT(...), 100, meters)``,
``INTERVAL('2025-01-01', '..')`` and ``INTERVAL(created_at, resolved_at)``, keeping
pygeofilter's transformer and AST. Temporal functions compile to comparisons of interval ends
(:data:`TEMPORAL_RELATIONS`).

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
from datetime import UTC, date, datetime, timedelta
from typing import Any

import shapely.geometry
from lark import Lark, v_args
from lark import logger as lark_logger
from lark.exceptions import LarkError
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_json import parse as parse_cql2_json_tree
from pygeofilter.parsers.cql2_text import parser as cql2_text_module

from gis.errors import InvalidParameter
from gis.features.request import (
    CRS84,
    ApiCRS,
    TimeRange,
    coerce,
    day_start,
    parse_instant,
    time_range,
)
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


# The temporal functions of CQL2 (class temporal-functions), each as a relation between two
# closed intervals a = [a0, a1] and b = [b0, b1] (Allen's interval algebra, as the standard
# defines them); an instant t is the interval [t, t]. Names as in CQL2, lower case.
TEMPORAL_RELATIONS = {
    "t_after": "{a0} > {b1}",
    "t_before": "{a1} < {b0}",
    "t_contains": "{a0} < {b0} AND {a1} > {b1}",
    "t_disjoint": "NOT ({a0} <= {b1} AND {a1} >= {b0})",
    "t_during": "{a0} > {b0} AND {a1} < {b1}",
    "t_equals": "{a0} = {b0} AND {a1} = {b1}",
    "t_finishedby": "{a0} < {b0} AND {a1} = {b1}",
    "t_finishes": "{a0} > {b0} AND {a1} = {b1}",
    "t_intersects": "{a0} <= {b1} AND {a1} >= {b0}",
    "t_meets": "{a1} = {b0}",
    "t_metby": "{a0} = {b1}",
    "t_overlappedby": "{a0} > {b0} AND {a0} < {b1} AND {a1} > {b1}",
    "t_overlaps": "{a0} < {b0} AND {a1} > {b0} AND {a1} < {b1}",
    "t_startedby": "{a0} = {b0} AND {a1} > {b1}",
    "t_starts": "{a0} = {b0} AND {a1} < {b1}",
}
# Names of earlier CQL drafts (and pygeofilter's grammar) for the same relations.
TEMPORAL_ALIASES = {"t_begins": "t_starts", "t_begunby": "t_startedby", "t_ends": "t_finishes",
                    "t_endedby": "t_finishedby"}
# pygeofilter's own nodes (other parsers) by the relation they stand for.
_PYGEOFILTER_TEMPORAL = {
    ast.TimeAfter: "t_after", ast.TimeBefore: "t_before", ast.TimeContains: "t_contains",
    ast.TimeDisjoint: "t_disjoint", ast.TimeDuring: "t_during", ast.TimeEquals: "t_equals",
    ast.TimeEndedBy: "t_finishedby", ast.TimeEnds: "t_finishes", ast.TimeMeets: "t_meets",
    ast.TimeMetBy: "t_metby", ast.TimeOverlappedBy: "t_overlappedby",
    ast.TimeOverlaps: "t_overlaps", ast.TimeBegunBy: "t_startedby", ast.TimeBegins: "t_starts"}
ONE_MICROSECOND = timedelta(microseconds=1)  # PostgreSQL's resolution: a day ends 1 µs early


def temporal_relation_name(name: str) -> str:
    """The CQL2 name of a temporal function (any case, older aliases), or a 400.

    >>> temporal_relation_name("T_OVERLAPPEDBY"), temporal_relation_name("t_begins")
    ('t_overlappedby', 't_starts')
    """
    low = name.lower()
    low = TEMPORAL_ALIASES.get(low, low)
    if low not in TEMPORAL_RELATIONS:
        raise InvalidFilter(f"unknown temporal function {name!r}")
    return low


@dataclass
class TimeRelation(ast.TemporalPredicate):
    """A CQL2 temporal function ``relation(lhs, rhs)`` (a key of TEMPORAL_RELATIONS).

    Recognised by its ``relation`` attribute rather than by class identity: lark's parser
    cache may hand back nodes of another import of this module (doctests import it twice).
    """

    relation: str = "t_intersects"
    op = ast.TemporalComparisonOp.TOVERLAPS  # for pygeofilter's templates only


class DistanceWithin(ast.DistanceWithin):
    """``S_DWITHIN`` from the extended grammar."""


# ------------------------------------------------------------------------------- parsing
_EXTRA_RULES = r"""
?temporal_predicate: expression _binary_temporal_predicate_func expression -> binary_temporal_predicate
                   | _binary_temporal_predicate_func "(" expression "," expression ")" -> temporal_function
!_binary_temporal_predicate_func: "T_AFTER"i | "T_BEFORE"i | "T_CONTAINS"i | "T_DISJOINT"i
                        | "T_DURING"i | "T_EQUALS"i | "T_FINISHEDBY"i | "T_FINISHES"i
                        | "T_INTERSECTS"i | "T_MEETS"i | "T_METBY"i | "T_OVERLAPPEDBY"i
                        | "T_OVERLAPS"i | "T_STARTEDBY"i | "T_STARTS"i | "T_BEGINS"i
                        | "T_BEGUNBY"i | "T_ENDS"i | "T_ENDEDBY"i
?spatial_predicate: _binary_spatial_predicate_func "(" expression "," expression ")" -> binary_spatial_predicate
                  | "S_DWITHIN"i "(" expression "," expression "," full_number ["," distance_units] ")" -> dwithin
                  | "BBOX"i "(" expression "," full_number "," full_number "," full_number "," full_number [ ","  SINGLE_QUOTED] ")" -> bbox_spatial_predicate
!distance_units: "meters"i | "metres"i | "m"i | "kilometers"i | "kilometres"i | "km"i
?timestamp: "TIMESTAMP"i "(" "'" DATETIME "'" ")"
?date: "DATE"i "(" "'" DATE "'" ")"
interval: "INTERVAL"i "(" _bound "," _bound ")"
_bound: "'" DATETIME "'" | "'" DATE "'" | OPEN_END | attribute
OPEN_END: "'..'"
"""  # noqa: E501 (grammar lines)


@v_args(meta=False, inline=True)
class _Transformer(cql2_text_module.CQLTransformer):
    def temporal_function(self, op: Any, lhs: Any, rhs: Any) -> ast.Node:
        return TimeRelation(lhs, rhs, temporal_relation_name(str(op)))

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
    grammar = _drop_rules(base, ("temporal_predicate", "_binary_temporal_predicate_func",
                                 "spatial_predicate", "timestamp", "interval", "date")
                          ) + _EXTRA_RULES
    return Lark(grammar, parser="lalr", maybe_placeholders=False, transformer=_Transformer(),
                cache=True,
                import_paths=[os.path.dirname(here)])


def _json_time_arg(node: Any) -> Any:
    """An argument of a CQL2-JSON temporal function: intervals may hold properties and
    ``..`` (pygeofilter's walker takes neither); the rest is pygeofilter's job."""
    if isinstance(node, dict) and "interval" in node:
        bounds = node["interval"]
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise InvalidFilter("an interval needs exactly two bounds")
        ends: list[Any] = []
        for b in bounds:
            if b == "..":
                ends.append(None)
            elif isinstance(b, dict) and isinstance(b.get("property"), str):
                ends.append(ast.Attribute(b["property"]))
            elif isinstance(b, str):
                ends.append(parse_instant(b))
            else:
                raise InvalidFilter(f"an interval bound must be a date, a timestamp, '..' or "
                                    f"a property, got {b!r}")
        return values.Interval(*ends)
    return parse_cql2_json_tree(node) if isinstance(node, dict) else node


def _json_extensions(node: Any) -> Any:
    """Pre-walk CQL2-JSON: ``s_dwithin`` and the temporal functions become our AST nodes
    (the rest is pygeofilter's job)."""
    if isinstance(node, list):
        return [_json_extensions(n) for n in node]
    if not isinstance(node, dict):
        return node
    op = node.get("op")
    if isinstance(op, str) and op.lower().startswith("t_"):
        args = node.get("args")
        if not isinstance(args, list) or len(args) != 2:
            raise InvalidFilter(f"{op} needs two arguments in a list")
        return TimeRelation(*(_json_time_arg(a) for a in args), temporal_relation_name(op))
    if op == "s_dwithin":
        args = node.get("args")
        if not isinstance(args, list) or len(args) < 2:
            raise InvalidFilter(f"{op} needs its arguments as a list")
        parts = [parse_cql2_json_tree(_json_extensions(a)) if isinstance(a, dict) else a
                 for a in args]
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
    TimeRelation(lhs=ATTRIBUTE created_at, rhs=datetime.datetime(...), relation='t_after')
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


class _Bound:
    """SQL of a parameter, added to the statement's parameters when first formatted."""

    def __init__(self, make: Any) -> None:
        self.make, self.sql = make, None

    def __format__(self, spec: str) -> str:
        if self.sql is None:
            self.sql = self.make()
        return self.sql


def _attributes(*nodes: Any) -> list[ast.Attribute]:
    """The properties named by temporal operands (directly or as interval bounds)."""
    out: list[ast.Attribute] = []
    for n in nodes:
        if isinstance(n, values.Interval):
            out += [b for b in (n.start, n.end) if isinstance(b, ast.Attribute)]
        elif isinstance(n, ast.Attribute):
            out.append(n)
    return out


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
    def _temporal(self, node: ast.TemporalPredicate) -> str:
        """A temporal function between two operands, each a closed interval [start, end]:
        an instant property or literal is [t, t], ``INTERVAL(a, b)`` (literals, properties
        or ``'..'``, an open end) is [a, b], a DATE is the whole day. When every property
        involved is a date, the comparison is made in days (literals become dates). A null
        property makes the function false."""
        relation = getattr(node, "relation", None) or _PYGEOFILTER_TEMPORAL.get(type(node))
        if relation is None:
            raise InvalidFilter(f"this server does not support {type(node).__name__}")
        kinds = {self._time_field(a).type for a in _attributes(node.lhs, node.rhs)}
        days = kinds == {"date"}
        a0, a1 = self._time_operand(node.lhs, days)
        b0, b1 = self._time_operand(node.rhs, days)
        # A null property is no instant and no interval end: the function is false (SQL
        # alone would make T_DISJOINT true for [created_at, NULL] after the interval).
        known = [f"{self.scope.column(a.name)} IS NOT NULL"
                 for a in {a.name: a for a in _attributes(node.lhs, node.rhs)}.values()]
        rel = TEMPORAL_RELATIONS[relation].format(a0=a0, a1=a1, b0=b0, b1=b1)
        return "(" + " AND ".join([*known, f"({rel})" if known else rel]) + ")"

    def _time_field(self, node: ast.Attribute):
        f = self._field(node)
        if f.type not in ("date", "datetime"):
            raise InvalidFilter(f"property {f.name!r} is not a date or timestamp")
        return f

    def _time_operand(self, node: Any, days: bool) -> tuple[str, str]:
        """SQL of the (start, end) of a temporal operand."""
        if isinstance(node, values.Interval):
            lo, hi = node.start, node.end
            if isinstance(lo, date) and isinstance(hi, date) and (
                    self._time_literal(lo, days, False) > self._time_literal(hi, days, True)):
                raise InvalidFilter("the interval ends before it starts")
            return self._time_bound(lo, days, False), self._time_bound(hi, days, True)
        if isinstance(node, ast.Attribute | date):
            return self._time_bound(node, days, False), self._time_bound(node, days, True)
        raise InvalidFilter(f"expected a DATE, TIMESTAMP, INTERVAL or a date/time property, "
                            f"got {node!r}")

    def _time_bound(self, value: Any, days: bool, end: bool) -> str:
        cast = "date" if days else "timestamptz"
        if value is None:  # an open end: unbounded
            return f"'{'infinity' if end else '-infinity'}'::{cast}"
        if isinstance(value, ast.Attribute):
            f = self._time_field(value)
            col = self.scope.column(f.name)
            if f.type == "date" and not days:  # a date property beside timestamps: UTC day
                return f"({col}::timestamp AT TIME ZONE 'UTC')"
            return col
        if isinstance(value, date):  # bound only if the relation uses it (PostgreSQL
            literal = self._time_literal(value, days, end)  # refuses unused parameters)
            return _Bound(lambda: f"{self.params.add(literal)}::{cast}")  # type: ignore
        raise InvalidFilter(f"interval bounds must be dates, timestamps, '..' or date/time "
                            f"properties, got {value!r}")

    @staticmethod
    def _time_literal(value: date, days: bool, end: bool) -> date:
        """A DATE or TIMESTAMP literal as the start or end of an interval: in days, a
        timestamp's UTC date; in time, a date's first or last microsecond."""
        if isinstance(value, datetime):
            t = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
            return t.astimezone(UTC).date() if days else t
        if days:
            return value
        return day_start(value) + (timedelta(days=1) - ONE_MICROSECOND if end else timedelta())

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
