"""The catalog matches the schema: one declaration drives storage, features and tiles."""

import unicodedata

import psycopg
import pytest

from layers import CATALOG, RASTER_LAYERS, VECTOR_LAYERS, Layer
from layers.incidents import INCIDENT_CATEGORIES
from layers.parcels import LAND_USE

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


def _vietnamese(text: str) -> bool:
    """Written with Vietnamese letters: at least one letter with a diacritic or đ."""
    return any(unicodedata.decomposition(c) or c in "đĐ" for c in text if c.isalpha())


@pytest.mark.parametrize("layer", list(VECTOR_LAYERS.values()), ids=list(VECTOR_LAYERS))
def test_every_field_has_an_english_and_a_vietnamese_title(layer: Layer) -> None:
    for f in layer.fields:
        where = f"{layer.id}.{f.name}"
        assert f.title and f.title_vi, where
        # Vietnamese, not an English title copied over; precomposed (NFC) like the data.
        assert _vietnamese(f.title_vi), (where, f.title_vi)
        assert unicodedata.normalize("NFC", f.title_vi) == f.title_vi, where
        assert f.title_in("vi") == f.title_vi and f.title_in("en") == f.title
    titles = [f.title_vi for f in layer.fields]
    assert len(set(titles)) == len(titles), "two fields of a layer with one Vietnamese title"


@pytest.mark.parametrize("layer", list(VECTOR_LAYERS.values()), ids=list(VECTOR_LAYERS))
def test_every_choice_is_explained_in_both_languages(layer: Layer) -> None:
    for f in layer.fields:
        if not f.choices:
            assert not f.choice_titles, f"{layer.id}.{f.name}"
            continue
        assert [v for v, _, _ in f.choice_titles] == list(f.choices), f"{layer.id}.{f.name}"
        for v, en, vi in f.choice_titles:
            assert en and vi and unicodedata.normalize("NFC", vi) == vi, (f.name, v)
            assert f.choice_title(v, "en") == en and f.choice_title(v, "vi") == vi
        vi_labels = [vi for _, _, vi in f.choice_titles]
        assert len(set(vi_labels)) == len(vi_labels), f"{layer.id}.{f.name}"


def test_land_use_and_incident_categories_keep_their_official_names() -> None:
    land_use = VECTOR_LAYERS["parcels"].field("land_use")
    assert land_use.title_vi == "Mục đích sử dụng đất"
    assert land_use.choice_title("ODT", "vi") == "Đất ở tại đô thị"  # Luật Đất đai 2024
    assert land_use.choice_title("LUC", "en") == "Specialised paddy land"
    assert {v: (en, vi) for v, en, vi in land_use.choice_titles} == {
        k: (en, vi) for k, (en, vi, _) in LAND_USE.items()}
    category = VECTOR_LAYERS["incidents"].field("category")
    assert {v: (en, vi) for v, en, vi in category.choice_titles} == INCIDENT_CATEGORIES
    assert VECTOR_LAYERS["parcels"].field("owner_name").title_vi == "Chủ sử dụng"
    assert VECTOR_LAYERS["parcels"].field("ward_code").title_vi == "Mã phường/xã"
    assert VECTOR_LAYERS["parcels"].field("area_m2").title_vi == "Diện tích (m²)"
