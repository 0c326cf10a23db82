"""OGC API Features Part 4: create, replace, update (JSON merge patch) and delete features.

Everything comes from the catalog: which layers are editable, the JSON Schema a feature is
validated against (types, choices, required fields; an unknown property is refused), the
geometry type, and the derived fields (``derive="area"|"ward"``) recomputed from the geometry.
Each write happens in one transaction with its row in the append-only ``feature_audit``
table; the row is locked and its ETag compared with ``If-Match`` before anything changes.

Who may write: planners and admins on every editable layer; inspectors on ``construction``
(permits and violations) in their own wards only, before and after the edit. The properties a
caller may write are those it may read (:func:`gis.sqlbuild.visible_fields`); the others keep
their stored value, and naming one is an unknown property (a 400 that reveals nothing).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import jsonschema
import shapely
from shapely.geometry import shape

from gis.auth import Principal
from gis.crs import parse_crs
from gis.errors import (
    Conflict,
    FeatureNotFound,
    HueGISError,
    InvalidGeometry,
    InvalidParameter,
    OutsideHue,
    PreconditionFailed,
    PreconditionRequired,
)
from gis.features.items import feature_id as typed_id
from gis.sqlbuild import ident, properties_json, table_ref, visible_fields
from layers import Field, Layer

AREA_SRID = 9214  # VN-2000 / TM-3 107-00: areas are measured in it
GEOJSON_DECIMALS = 7
EDIT_ROLES = ("planner",)  # and admin, who may do everything
INSPECTOR_LAYERS = frozenset({"construction"})
_JSON_TYPES = {"text": "string", "int": "integer", "float": "number", "date": "string",
               "datetime": "string", "bool": "boolean"}
_FORMATS = {"date": "date", "datetime": "date-time"}


class NotEditable(HueGISError):
    """The collection does not take writes (405, as OGC API Features Part 4 says)."""

    code = "MethodNotAllowed"
    status = 405


# ---------------------------------------------------------------- who, what, which schema


def check_may_edit(layer: Layer, principal: Principal) -> None:
    """Raise 405 for a read-only layer, 401 for anonymous callers, 403 for other roles.

    >>> from layers import VECTOR_LAYERS
    >>> check_may_edit(VECTOR_LAYERS["parcels"], Principal("planner"))
    >>> check_may_edit(VECTOR_LAYERS["parcels"], Principal("inspector", wards=frozenset({"1"})))
    Traceback (most recent call last):
    ...
    gis.errors.Forbidden: role 'inspector' may not do this; needs one of planner
    """
    if not layer.editable:
        raise NotEditable(f"collection {layer.id!r} is read-only")
    if principal.role == "inspector" and layer.id in INSPECTOR_LAYERS:
        principal.require("inspector")
        return
    principal.require(*EDIT_ROLES)


def writable_fields(layer: Layer, principal: Principal) -> list[Field]:
    """The fields ``principal`` may send: those it may read, except the id column."""
    names = set(visible_fields(layer, principal=principal))
    return [f for f in layer.fields if f.name in names and f.name != layer.id_column]


def feature_schema(layer: Layer, principal: Principal) -> dict:
    """JSON Schema of a GeoJSON Feature that ``principal`` may write to ``layer``.

    Derived fields are accepted (and recomputed); required fields must be present and not
    null; a property outside the schema is refused.

    >>> from layers import VECTOR_LAYERS
    >>> s = feature_schema(VECTOR_LAYERS["parcels"], Principal("planner"))
    >>> s["properties"]["properties"]["required"]
    ['parcel_no', 'map_sheet_no', 'land_use']
    >>> "owner_name" in feature_schema(VECTOR_LAYERS["parcels"], Principal("admin")
    ...                                )["properties"]["properties"]["properties"]
    True
    """
    props: dict[str, Any] = {}
    for f in writable_fields(layer, principal):
        p: dict[str, Any] = {"type": _JSON_TYPES[f.type] if f.required
                             else [_JSON_TYPES[f.type], "null"]}
        if f.title:
            p["title"] = f.title
        if f.type in _FORMATS:
            p["format"] = _FORMATS[f.type]
        if f.choices:
            p["enum"] = list(f.choices) + ([] if f.required else [None])
        if f.type == "text":
            p["maxLength"] = 10_000
        props[f.name] = p
    required = [f.name for f in layer.fields if f.required and f.name in props]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{layer.title}: feature",
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"const": "Feature"},
            "id": {"type": ["string", "integer", "null"]},
            "geometry": {"type": "object", "required": ["type", "coordinates"],
                         "properties": {"type": {"type": "string"},
                                        "coordinates": {"type": "array"}}},
            "properties": {"type": "object", "additionalProperties": False,
                           "properties": props, "required": required},
        },
    }


_checker = jsonschema.FormatChecker(formats=("date",))


@_checker.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    if isinstance(value, str):
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


def validate_feature(layer: Layer, principal: Principal, doc: object) -> dict:
    """Check a GeoJSON Feature against :func:`feature_schema`; return its properties.

    >>> from layers import VECTOR_LAYERS
    >>> validate_feature(VECTOR_LAYERS["tourism"], Principal("planner"),
    ...     {"type": "Feature", "geometry": {"type": "Point", "coordinates": [107.5, 16.4]},
    ...      "properties": {"name": "Đại Nội", "category": "castle"}})
    Traceback (most recent call last):
    ...
    gis.errors.InvalidParameter: properties.category: 'castle' is not one of ['heritage', ...
    """
    validator = jsonschema.Draft202012Validator(feature_schema(layer, principal),
                                                format_checker=_checker)
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "feature"
        message = error.message
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            message = "unknown properties: " + ", ".join(repr(k) for k in extra)
        if error.validator == "enum" and len(message) > 160:
            message = message[:150] + "..."
        raise InvalidParameter(f"{where}: {message}")
    assert isinstance(doc, dict)
    return dict(doc["properties"])


# ------------------------------------------------------------------------- geometry


def parse_content_crs(value: str | None) -> tuple[int, bool]:
    """The SRID of a ``Content-Crs`` header and whether its axis order is latitude first
    (EPSG:4326 and EPSG:4756 by their EPSG names; CRS84, the default, is longitude first).

    >>> parse_content_crs(None), parse_content_crs("<http://www.opengis.net/def/crs/EPSG/0/9214>")
    ((4326, False), (9214, False))
    >>> parse_content_crs("http://www.opengis.net/def/crs/EPSG/0/4326")
    (4326, True)
    """
    if value is None or not value.strip():
        return 4326, False
    text = value.strip().removeprefix("<").removesuffix(">").strip()
    srid = parse_crs(text)
    lat_first = srid in (4326, 4756) and "crs84" not in text.lower()
    return srid, lat_first


def _geometry(layer: Layer, geojson: Mapping, lat_first: bool) -> shapely.Geometry:
    """The feature's geometry in its input CRS, of the layer's type (a single part promoted
    to multi), two-dimensional and valid; else :class:`InvalidGeometry` saying why."""
    try:
        geom = shape(geojson)
    except Exception as exc:  # shapely raises many kinds for malformed GeoJSON
        raise InvalidGeometry(f"geometry: not a valid GeoJSON geometry ({exc})") from None
    if geom.is_empty:
        raise InvalidGeometry("geometry: empty")
    if not all(math.isfinite(c) for c in shapely.get_coordinates(geom).ravel()):
        raise InvalidGeometry("geometry: coordinates must be finite numbers")
    geom = shapely.force_2d(geom)
    wanted = layer.geometry_type
    if geom.geom_type != wanted:
        if wanted == "Multi" + geom.geom_type:
            geom = getattr(shapely, wanted)([geom])
        else:
            raise InvalidGeometry(f"geometry: layer {layer.id!r} takes {wanted}, "
                                  f"not {geom.geom_type}")
    if lat_first:
        geom = shapely.transform(geom, lambda xy: xy[:, ::-1])
    if not geom.is_valid:
        raise InvalidGeometry(f"geometry: invalid ({shapely.is_valid_reason(geom)})")
    return geom


def _derived_sql(layer: Layer) -> str:
    """SQL taking the input geometry (``$1`` WKB, ``$2`` SRID) to EPSG:4326, with its
    validity, whether it lies in Huế (intersects the city outline or a ward, as imports
    check), its area in m² (EPSG:9214) and the ward containing its point on surface (else
    the nearest)."""
    return f"""
    WITH g AS (SELECT ST_Transform(ST_SetSRID(ST_GeomFromWKB($1), $2), 4326) AS geom)
    SELECT ST_AsEWKB(g.geom) AS ewkb, ST_IsValid(g.geom) AS valid,
      EXISTS (SELECT 1 FROM admin_units a WHERE a.level IN ('city', 'ward')
              AND ST_Intersects(a.geom, g.geom)) AS inside,
      ST_Area(ST_Transform(g.geom, {AREA_SRID})) AS area,
      (SELECT a.gso_code FROM admin_units a WHERE a.level = 'ward'
       ORDER BY ST_Distance(a.geom, ST_PointOnSurface(g.geom)), a.gso_code LIMIT 1) AS ward
    FROM g"""


@dataclass(frozen=True)
class Placed:
    """A geometry ready to store (EWKB in EPSG:4326) and the values derived from it."""

    ewkb: bytes
    derived: dict[str, object]


async def place(conn: asyncpg.Connection, layer: Layer, geojson: Mapping, srid: int,
                lat_first: bool) -> Placed:
    """Validate ``geojson`` (given in ``srid``), bring it to EPSG:4326, check it is in Huế and
    compute the layer's derived fields."""
    geom = _geometry(layer, geojson, lat_first)
    try:
        row = await conn.fetchrow(_derived_sql(layer), shapely.to_wkb(geom), srid)
    except (asyncpg.InternalServerError, asyncpg.DataError) as exc:  # PROJ cannot transform
        raise InvalidGeometry(f"geometry: cannot be read in EPSG:{srid} "
                              f"({exc.args[0] if exc.args else exc})") from None
    if not row["valid"]:
        raise InvalidGeometry("geometry: invalid once transformed to EPSG:4326")
    if not row["inside"]:
        raise OutsideHue("geometry: outside Huế (intersects neither the city boundary nor "
                         "any ward); is Content-Crs right?")
    derived: dict[str, object] = {}
    for f in layer.fields:
        if f.derive == "area":
            derived[f.name] = round(row["area"], 2) if layer.is_polygonal else None
        elif f.derive == "ward":
            derived[f.name] = row["ward"]
    return Placed(bytes(row["ewkb"]), derived)


# --------------------------------------------------------------------------- SQL pieces


def etag_sql(alias: str = "t") -> str:
    """SQL of a row's strong ETag: its transaction id and last update (both change on every
    write, and only then).

    >>> print(etag_sql("p"))
    ('"' || p.xmin::text || '-' || (extract(epoch FROM p.updated_at) * 1000000)::bigint || '"')
    """
    return (f"('\"' || {alias}.xmin::text || '-' || "
            f"(extract(epoch FROM {alias}.updated_at) * 1000000)::bigint || '\"')")


def feature_sql(layer: Layer, principal: Principal | None, alias: str = "t") -> str:
    """``json_build_object`` of a row as a GeoJSON Feature: with the fields ``principal`` may
    read, or every field when ``principal`` is None (the audit's full record)."""
    props = properties_json(layer, alias, include_private=principal is None,
                            principal=principal)
    return (f"json_build_object('type', 'Feature', 'id', {alias}.{ident(layer.id_column)}, "
            f"'geometry', ST_AsGeoJSON({alias}.{ident(layer.geometry_column)}, "
            f"{GEOJSON_DECIMALS})::json, 'properties', {props})")


def check_if_match(if_match: str | None, etag: str) -> None:
    """428 without ``If-Match``, 412 when none of its (strong) tags is the current one.

    >>> check_if_match('"1-2", "3-4"', '"3-4"')
    >>> check_if_match('*', '"3-4"')
    >>> check_if_match('W/"3-4"', '"3-4"')
    Traceback (most recent call last):
    ...
    gis.errors.PreconditionFailed: If-Match W/"3-4" does not match the feature's ETag "3-4": \
it changed since you read it; GET it again
    """
    if if_match is None or not if_match.strip():
        raise PreconditionRequired("this write needs an If-Match header with the feature's "
                                   "ETag (GET the feature first)")
    tags = [t.strip() for t in if_match.split(",")]
    if "*" in tags or etag in tags:
        return
    raise PreconditionFailed(f"If-Match {if_match} does not match the feature's ETag {etag}: "
                             "it changed since you read it; GET it again")


# --------------------------------------------------------------------------- the writes


@dataclass(frozen=True)
class Written:
    """What a write returns: the feature's id, ETag and GeoJSON as the caller may see it
    (None after a delete)."""

    id: str
    etag: str | None
    feature: str | None


def merge_patch(target: object, patch: object) -> object:
    """RFC 7396 JSON merge patch.

    >>> merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"a": None, "b": {"c": 9}, "e": [1]})
    {'b': {'c': 9, 'd': 3}, 'e': [1]}
    """
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _record(layer: Layer, principal: Principal, props: Mapping[str, object],
            derived: Mapping[str, object] | None, keep_source: bool) -> dict[str, object]:
    """Column values to write: every writable field (missing ones null), derived fields
    recomputed, ``source`` 'api' unless given (or kept on replace)."""
    rec: dict[str, object] = {}
    for f in writable_fields(layer, principal):
        if f.derive is not None:
            continue
        if f.name == "source" and props.get("source") is None:
            if not keep_source:
                rec["source"] = "api"
            continue
        rec[f.name] = props.get(f.name)
    if derived is not None:
        rec.update(derived)
    return rec


def _columns(rec: Mapping[str, object]) -> str:
    return ", ".join(ident(c) for c in rec)


async def _audit(conn: asyncpg.Connection, principal: Principal, operation: str, layer: Layer,
                 feature_id: str, before: str | None, after: str | None) -> None:
    await conn.execute(
        "INSERT INTO feature_audit (actor, actor_role, user_id, via, operation, layer, "
        "feature_id, before, after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb)",
        principal.name, principal.role, principal.user_id, principal.via, operation, layer.id,
        feature_id, before, after)


async def _after(conn: asyncpg.Connection, layer: Layer, principal: Principal,
                 fid: object) -> asyncpg.Record:
    return await conn.fetchrow(
        f"SELECT t.{ident(layer.id_column)}::text AS id, {etag_sql()} AS etag, "
        f"{feature_sql(layer, principal)}::text AS feature, {feature_sql(layer, None)}::text "
        f"AS full FROM {table_ref(layer)} t WHERE t.{ident(layer.id_column)} = $1", fid)


def _translate(exc: asyncpg.PostgresError, layer: Layer) -> Exception:
    """A constraint violation as the client's error (never a 500); other errors as they
    are."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        keys = ", ".join(layer.key) or "its key"
        return Conflict(f"a feature with the same {keys} already exists in {layer.id!r}")
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError | asyncpg.DataError):
        return InvalidParameter(f"refused by the database: {exc.args[0] if exc.args else exc}")
    return exc


async def create(conn: asyncpg.Connection, layer: Layer, principal: Principal, doc: object,
                 content_crs: str | None = None) -> Written:
    """Insert a feature (POST); one audit row in the same transaction."""
    check_may_edit(layer, principal)
    props = validate_feature(layer, principal, doc)
    srid, lat_first = parse_content_crs(content_crs)
    assert isinstance(doc, dict)
    async with conn.transaction():
        placed = await place(conn, layer, doc["geometry"], srid, lat_first)
        principal.require_ward(_ward_of(layer, placed.derived))
        rec = _record(layer, principal, props, placed.derived, keep_source=False)
        cols = _columns(rec)
        try:
            fid = await conn.fetchval(
                f"INSERT INTO {table_ref(layer)} ({cols}, {ident(layer.geometry_column)}) "
                f"SELECT {cols}, ST_GeomFromEWKB($2) "
                f"FROM jsonb_populate_record(NULL::{table_ref(layer)}, $1::jsonb) "
                f"RETURNING {ident(layer.id_column)}", json.dumps(rec), placed.ewkb)
        except asyncpg.PostgresError as exc:
            raise _translate(exc, layer) from None
        row = await _after(conn, layer, principal, fid)
        await _audit(conn, principal, "create", layer, row["id"], None, row["full"])
    return Written(row["id"], row["etag"], row["feature"])


def _ward_of(layer: Layer, values: Mapping[str, object]) -> str | None:
    for f in layer.fields:
        if f.derive == "ward":
            return values.get(f.name)  # type: ignore[return-value]
    return None


async def _locked(conn: asyncpg.Connection, layer: Layer, principal: Principal,
                  feature_id: str, if_match: str | None) -> asyncpg.Record:
    """Lock the row, check ``If-Match`` and the inspector's ward; the row's id, ETag, full
    record and the record as ``principal`` sees it."""
    key = typed_id(layer, feature_id)
    row = None if key is None else await conn.fetchrow(
        f"SELECT t.{ident(layer.id_column)} AS id, {etag_sql()} AS etag, "
        f"{feature_sql(layer, None)}::text AS full, "
        f"{feature_sql(layer, principal)}::text AS visible "
        f"FROM {table_ref(layer)} t WHERE t.{ident(layer.id_column)} = $1 FOR UPDATE", key)
    if row is None:
        raise FeatureNotFound(f"no feature {feature_id!r} in collection {layer.id!r}")
    principal.require_ward(_ward_of(layer, json.loads(row["full"])["properties"]))
    check_if_match(if_match, row["etag"])
    return row


async def replace(conn: asyncpg.Connection, layer: Layer, principal: Principal,
                  feature_id: str, doc: object, if_match: str | None,
                  content_crs: str | None = None, operation: str = "replace") -> Written:
    """Replace a feature (PUT): every writable property (missing ones become null) and the
    geometry; properties the caller may not read keep their value."""
    check_may_edit(layer, principal)
    props = validate_feature(layer, principal, doc)
    _same_id(doc, feature_id)
    srid, lat_first = parse_content_crs(content_crs)
    assert isinstance(doc, dict)
    async with conn.transaction():
        before = await _locked(conn, layer, principal, feature_id, if_match)
        return await _write(conn, layer, principal, before, props, doc["geometry"], srid,
                            lat_first, operation)


async def _write(conn: asyncpg.Connection, layer: Layer, principal: Principal,
                 before: asyncpg.Record, props: Mapping[str, object], geometry: object,
                 srid: int, lat_first: bool, operation: str) -> Written:
    placed = None
    if geometry is not None:
        placed = await place(conn, layer, geometry, srid, lat_first)  # type: ignore[arg-type]
        principal.require_ward(_ward_of(layer, placed.derived))
    rec = _record(layer, principal, props, placed.derived if placed else None,
                  keep_source=True)
    cols = _columns(rec)
    geom_set = f", {ident(layer.geometry_column)} = ST_GeomFromEWKB($3)" if placed else ""
    params: list[object] = [json.dumps(rec), before["id"]]
    if placed:
        params.append(placed.ewkb)
    try:
        await conn.execute(
            f"UPDATE {table_ref(layer)} t SET ({cols}) = (SELECT {cols} FROM "
            f"jsonb_populate_record(NULL::{table_ref(layer)}, $1::jsonb)){geom_set} "
            f"WHERE t.{ident(layer.id_column)} = $2", *params)
    except asyncpg.PostgresError as exc:
        raise _translate(exc, layer) from None
    row = await _after(conn, layer, principal, before["id"])
    await _audit(conn, principal, operation, layer, row["id"], before["full"], row["full"])
    return Written(row["id"], row["etag"], row["feature"])


def _same_id(doc: object, feature_id: str) -> None:
    if isinstance(doc, dict) and doc.get("id") is not None and str(doc["id"]) != feature_id:
        raise InvalidParameter(f"the body's id {doc['id']!r} is not the feature {feature_id!r} "
                               "of the URL")


async def update(conn: asyncpg.Connection, layer: Layer, principal: Principal,
                 feature_id: str, patch: object, if_match: str | None,
                 content_crs: str | None = None) -> Written:
    """Update a feature (PATCH) with a JSON merge patch (RFC 7396) of its GeoJSON: the patched
    feature is validated as a whole; without ``geometry`` the stored geometry is kept as is."""
    check_may_edit(layer, principal)
    if not isinstance(patch, dict):
        raise InvalidParameter("a merge patch must be a JSON object")
    _same_id(patch, feature_id)
    if "geometry" in patch and patch["geometry"] is None:
        raise InvalidGeometry("geometry: a feature of this layer needs a geometry")
    srid, lat_first = parse_content_crs(content_crs)
    async with conn.transaction():
        before = await _locked(conn, layer, principal, feature_id, if_match)
        visible = json.loads(before["visible"])
        writable = {f.name for f in writable_fields(layer, principal)}
        visible["properties"] = {k: v for k, v in visible["properties"].items()
                                 if k in writable and v is not None}
        merged = merge_patch(visible, patch)
        props = validate_feature(layer, principal, merged)
        geometry = merged["geometry"] if "geometry" in patch else None  # type: ignore[index]
        return await _write(conn, layer, principal, before, props, geometry, srid, lat_first,
                            "update")


async def delete(conn: asyncpg.Connection, layer: Layer, principal: Principal,
                 feature_id: str, if_match: str | None) -> Written:
    """Delete a feature (DELETE); the audit keeps its last state."""
    check_may_edit(layer, principal)
    async with conn.transaction():
        before = await _locked(conn, layer, principal, feature_id, if_match)
        await conn.execute(f"DELETE FROM {table_ref(layer)} "
                           f"WHERE {ident(layer.id_column)} = $1", before["id"])
        await _audit(conn, principal, "delete", layer, str(before["id"]), before["full"], None)
    return Written(str(before["id"]), None, None)

