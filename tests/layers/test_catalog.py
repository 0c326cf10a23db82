"""The catalog matches the schema: one declaration drives storage, features and tiles."""

import psycopg
import pytest

from layers import CATALOG, RASTER_LAYERS, VECTOR_LAYERS, Layer

PG_TYPES = {
    "text": {"text", "character varying"},
    "int": {"integer", "bigint", "smallint"},
    "float": {"double precision", "real", "numeric"},
    "date": {"date"},
    "datetime": {"timestamp with time zone", "timestamp without time zone"},
    "bool": {"boolean"},
}


def test_collection_ids() -> None:
    assert set(VECTOR_LAYERS) == {"wards", "parcels", "construction", "tourism", "health",
                                  "education", "incidents"}
    assert set(RASTER_LAYERS) == {"flood-depth", "elevation"}
    assert len(CATALOG) == 9


def test_private_fields() -> None:
    private = {lid: {f.name for f in layer.private_fields} for lid, layer in VECTOR_LAYERS.items()}
    assert private["parcels"] == {"owner_name"}
    assert private["construction"] == {"inspector_notes"}
    assert private["incidents"] == {"reporter_name", "reporter_phone", "reporter_email"}
    assert not private["wards"] and not private["tourism"]


@pytest.mark.parametrize("layer", list(VECTOR_LAYERS.values()), ids=list(VECTOR_LAYERS))
def test_layer_matches_table(layer: Layer, database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        cols = dict(conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s", (layer.schema, layer.table)))
        gtype, srid = conn.execute(
            "SELECT type, srid FROM geometry_columns WHERE f_table_schema = %s "
            "AND f_table_name = %s AND f_geometry_column = %s",
            (layer.schema, layer.table, layer.geometry_column)).fetchone()
    assert layer.id_column in cols
    for f in layer.fields:
        assert f.name in cols, f"{layer.id}.{f.name} has no column"
        assert cols[f.name] in PG_TYPES[f.type], f"{layer.id}.{f.name}: {cols[f.name]}"
    for k in layer.key:
        assert layer.has_field(k)
    assert gtype.upper() == layer.geometry_type.upper()
    assert srid == 4326
    assert layer.style.fill or layer.style.stroke
    assert layer.zoom[0] <= layer.zoom[1]
    if layer.style.label:
        assert layer.has_field(layer.style.label)
    if layer.style.classify:
        choices = set(layer.field(layer.style.classify).choices or ())
        assert {c for c, _ in layer.style.classes} <= choices


def test_real_wards_loaded(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        n, codes = conn.execute("SELECT count(*), count(DISTINCT gso_code) FROM wards").fetchone()
        city = conn.execute("SELECT gso_code, name FROM admin_units WHERE level = 'city'"
                            ).fetchone()
        inside = conn.execute(
            "SELECT gso_code FROM wards WHERE ST_Contains(geom, "
            "ST_SetSRID(ST_MakePoint(107.5775, 16.4690), 4326))").fetchall()
    assert n == 40 and codes == 40
    with psycopg.connect(database_url) as conn:
        overlap = conn.execute(
            "SELECT coalesce(sum(ST_Area(ST_Intersection(a.geom, b.geom)::geography)), 0) "
            "FROM wards a JOIN wards b ON a.gso_code < b.gso_code AND a.geom && b.geom "
            "AND ST_Intersects(a.geom, b.geom)").fetchone()[0]
    assert overlap < 1.0  # m²: every point lies in exactly one ward
    assert city == ("46", "Thành phố Huế")
    assert inside == [("19753",)]  # Đại Nội lies in Phường Phú Xuân


@pytest.mark.parametrize("layer", list(VECTOR_LAYERS.values()), ids=list(VECTOR_LAYERS))
def test_derived_fields_fit_their_layer(layer: Layer) -> None:
    for f in layer.fields:
        if f.derive == "area":
            assert f.type == "float" and layer.is_polygonal, f"{layer.id}.{f.name}"
        elif f.derive == "ward":
            assert f.type == "text", f"{layer.id}.{f.name}"
    assert sum(f.derive == "ward" for f in layer.fields) <= 1
    assert sum(f.derive == "area" for f in layer.fields) <= 1
