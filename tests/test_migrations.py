"""Every migration upgrades and downgrades cleanly, on a real PostGIS."""

import psycopg
from pyproj import Transformer

from gis import db
from layers import VECTOR_LAYERS

HEAD = db.head_revision()
LAYER_TABLES = {"admin_units"} | {layer.table for layer in VECTOR_LAYERS.values()
                                   if layer.table != "wards"}

TABLES = {"admin_units", "land_parcels", "construction", "tourism_pois", "health_facilities",
          "education_facilities", "incidents", "incident_events", "raster_datasets"}


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT table_name FROM information_schema.tables "
                            "WHERE table_schema = 'public'").fetchall()
    return {r[0] for r in rows}


def test_upgrade_downgrade_round_trip(empty_database: str) -> None:
    db.migrate(empty_database)
    assert db.current_revision(empty_database) == HEAD
    assert TABLES <= _tables(empty_database)
    with psycopg.connect(empty_database) as conn:
        exts = {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}
        assert {"postgis", "postgis_raster", "pg_trgm", "unaccent"} <= exts
        # Every geometry column of every layer table has a GiST index.
        unindexed = conn.execute(
            "SELECT g.f_table_name, g.f_geometry_column FROM geometry_columns g "
            "JOIN pg_class c ON c.relname = g.f_table_name AND c.relkind = 'r' "
            "WHERE g.f_table_schema = 'public' AND g.f_table_name = ANY(%s) AND NOT EXISTS ("
            " SELECT 1 FROM pg_indexes i WHERE i.schemaname = 'public' "
            " AND i.tablename = g.f_table_name AND i.indexdef LIKE '%%USING gist%%' "
            " AND i.indexdef LIKE '%%' || g.f_geometry_column || '%%')",
            (sorted(LAYER_TABLES),)).fetchall()
        assert unindexed == []
        with_geometry = {r[0] for r in conn.execute(
            "SELECT f_table_name FROM geometry_columns WHERE f_table_schema = 'public'")}
        assert LAYER_TABLES <= with_geometry
        assert conn.execute("SELECT count(*) FROM spatial_ref_sys WHERE srid = 9214"
                            ).fetchone()[0] == 1

    db.downgrade(empty_database, "0001")
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT count(*) FROM spatial_ref_sys WHERE srid = 9214"
                            ).fetchone()[0] == 0
    db.downgrade(empty_database, "base")
    assert not TABLES & _tables(empty_database)
    assert db.current_revision(empty_database) is None

    db.migrate(empty_database)  # and up again, from scratch
    assert TABLES <= _tables(empty_database)


def test_postgis_transforms_vn2000_like_pyproj(database_url: str) -> None:
    lon, lat = 107.5905, 16.4637
    x, y = Transformer.from_crs(4326, 9214, always_xy=True).transform(lon, lat)
    with psycopg.connect(database_url) as conn:
        px, py = conn.execute(
            "SELECT ST_X(g), ST_Y(g) FROM ST_Transform(ST_SetSRID(ST_MakePoint(%s, %s), 4326),"
            " 9214) AS g", (lon, lat)).fetchone()
    assert abs(px - x) < 0.01 and abs(py - y) < 0.01


def test_geometry_constraints(conn: psycopg.Connection) -> None:
    """SRID and validity are enforced by the schema, and updated_at by a trigger."""
    bowtie = ("SRID=4326;MULTIPOLYGON(((107.58 16.46,107.59 16.47,107.59 16.46,"
              "107.58 16.47,107.58 16.46)))")
    for bad in (bowtie, "SRID=3857;MULTIPOLYGON(((0 0,1 0,1 1,0 0)))"):
        with conn.transaction(force_rollback=True):
            try:
                with conn.transaction():
                    conn.execute("INSERT INTO land_parcels (parcel_no, map_sheet_no, land_use, "
                                 "geom) VALUES ('1', '1', 'ODT', %s)", (bad,))
            except psycopg.Error as exc:
                assert isinstance(exc, psycopg.errors.CheckViolation | psycopg.errors.DataException
                                  | psycopg.errors.InvalidParameterValue)
            else:
                raise AssertionError(f"accepted {bad}")
    row = conn.execute(
        "INSERT INTO tourism_pois (name, category, geom) VALUES ('x', 'other', "
        "'SRID=4326;POINT(107.58 16.46)') RETURNING id, updated_at").fetchone()
    conn.execute("SELECT pg_sleep(0.01)")
    conn.commit()
    try:
        conn.execute("UPDATE tourism_pois SET name = 'y' WHERE id = %s", (row[0],))
        # Within one transaction now() is fixed, so compare against a new transaction's time.
        updated = conn.execute("SELECT updated_at FROM tourism_pois WHERE id = %s",
                               (row[0],)).fetchone()[0]
        assert updated > row[1]
    finally:
        conn.rollback()
        conn.execute("DELETE FROM tourism_pois WHERE id = %s", (row[0],))
        conn.commit()


def test_incident_events_are_append_only(conn: psycopg.Connection) -> None:
    inc = conn.execute(
        "INSERT INTO incidents (ref, category, geom) VALUES ('T-1', 'roads', "
        "'SRID=4326;POINT(107.58 16.46)') RETURNING id").fetchone()[0]
    ev = conn.execute("INSERT INTO incident_events (incident_id, actor, kind) "
                      "VALUES (%s, 'test', 'received') RETURNING id", (inc,)).fetchone()[0]
    try:
        with conn.transaction():
            conn.execute("UPDATE incident_events SET actor = 'x' WHERE id = %s", (ev,))
    except psycopg.errors.RaiseException as exc:
        assert "append-only" in str(exc)
    else:
        raise AssertionError("an event was updated")
