"""What an import needs from the database, read once before the file is: the target table's
columns, Huế's territory and wards, and the natural keys already in the table."""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg
import shapely
from psycopg import sql

from gis.errors import ImportRejected
from layers import Layer

# Used when no city boundary is loaded (W, S, E, N in EPSG:4326).
HUE_FALLBACK_BBOX = (107.0, 15.9, 108.3, 16.8)


@dataclass
class DbColumn:
    """A column of the target table, from ``information_schema.columns``."""

    name: str
    data_type: str
    not_null: bool
    default: object  # literal default value, or None
    has_default: bool


@dataclass
class Context:
    """What the validation needs from the database, read once before the reader starts."""

    columns: dict[str, DbColumn]
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


def load_context(conn: psycopg.Connection, layer: Layer) -> Context:
    """Read the :class:`Context` of an import into ``layer``.

    Raises
    ------
    ImportRejected
        The layer's table does not exist (migrations not run).
    """
    columns: dict[str, DbColumn] = {}
    for name, dtype, not_null, default in conn.execute(
            "SELECT column_name, data_type, is_nullable = 'NO', column_default "
            "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
            (layer.schema, layer.table)):
        literal, value = _literal_default(default)
        columns[name] = DbColumn(name, dtype, not_null, value if literal else None,
                                 default is not None)
    if not columns:
        raise ImportRejected(f"table {layer.schema}.{layer.table} of layer {layer.id!r} does "
                             "not exist; run the migrations (huegis db migrate)", layer=layer.id)
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
        table = sql.Identifier(layer.schema, layer.table)
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
    return Context(columns, city, wards, existing)

