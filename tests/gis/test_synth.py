"""Synthetic parcels, construction and incidents against the real PostGIS and the real wards.

Generated rows live in a transaction that is rolled back; queries only look at rows created in
it (``id`` above the largest id before generating), so data committed by other tests is ignored.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

import gis.synth
from gis import synth
from layers.construction import CONSTRUCTION
from layers.incidents import INCIDENT_CATEGORIES, INCIDENT_STATUSES
from layers.parcels import LAND_USE
from tests.common import CENTRAL_HUE_BBOX, DAI_NOI_LONLAT, TRUONG_TIEN_LONLAT

N_PARCELS = 2_000
N_CONSTRUCTION = 300
N_INCIDENTS = 1_500
SEED = 46


@dataclass
class Generated:
    conn: psycopg.Connection
    parcel_id: int  # rows with a larger id were generated here
    construction_id: int
    incident_id: int

    def one(self, query: str, *params: object):
        return self.conn.execute(query, params).fetchone()[0]


def _max_ids(conn: psycopg.Connection) -> tuple[int, int, int]:
    return tuple(conn.execute(
        "SELECT (SELECT coalesce(max(id), 0) FROM land_parcels), "
        "(SELECT coalesce(max(id), 0) FROM construction), "
        "(SELECT coalesce(max(id), 0) FROM incidents)").fetchone())


@pytest.fixture(scope="module")
def gen(database_url: str) -> Iterator[Generated]:
    """Parcels, construction and incidents generated once for this module (rolled back)."""
    with psycopg.connect(database_url) as conn:
        ids = _max_ids(conn)
        assert synth.generate_parcels(conn, N_PARCELS, SEED) == N_PARCELS
        assert synth.generate_construction(conn, N_CONSTRUCTION, SEED) == N_CONSTRUCTION
        assert synth.generate_incidents(conn, N_INCIDENTS, SEED) == N_INCIDENTS
        yield Generated(conn, *ids)
        conn.rollback()


def test_doctests() -> None:
    modules = [gis.synth] + [importlib.import_module(f"gis.synth.{m.name}")
                             for m in pkgutil.iter_modules(gis.synth.__path__)]
    results = [doctest.testmod(m) for m in modules]
    assert sum(r.failed for r in results) == 0
    assert sum(r.attempted for r in results) > 0


# ---------------------------------------------------------------------------------- parcels
def test_parcels_are_valid_multipolygons_marked_synthetic(gen: Generated) -> None:
    row = gen.conn.execute(
        "SELECT count(*), bool_and(source = 'synthetic'), bool_and(ST_IsValid(geom)), "
        "bool_and(GeometryType(geom) = 'MULTIPOLYGON'), bool_and(ST_SRID(geom) = 4326), "
        "bool_and(owner_name IS NOT NULL AND address IS NOT NULL AND zoning IS NOT NULL), "
        "bool_and(owner_type IN ('household', 'organisation', 'state', 'religious', "
        "'community')) FROM land_parcels WHERE id > %s", (gen.parcel_id,)).fetchone()
    assert row == (N_PARCELS, True, True, True, True, True, True)


def test_parcels_lie_inside_their_ward(gen: Generated) -> None:
    outside = gen.one(
        "SELECT count(*) FROM land_parcels p LEFT JOIN wards w ON w.gso_code = p.ward_code "
        "WHERE p.id > %s AND (w.gso_code IS NULL OR NOT ST_Within(p.geom, w.geom))",
        gen.parcel_id)
    assert outside == 0


def test_parcel_area_is_metric_and_plausible(gen: Generated) -> None:
    worst, smallest, largest, median = gen.conn.execute(
        "SELECT max(abs(area_m2 / ST_Area(geom::geography) - 1)), min(area_m2), max(area_m2), "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY area_m2) FILTER (WHERE land_use = 'ODT') "
        "FROM land_parcels WHERE id > %s", (gen.parcel_id,)).fetchone()
    assert worst < 0.01
    assert 80 <= smallest and largest <= 2000
    assert 100 <= median <= 400  # residential lots in the centre


def test_land_use_codes_and_mix(gen: Generated) -> None:
    counts = dict(gen.conn.execute(
        "SELECT land_use, count(*) FROM land_parcels WHERE id > %s GROUP BY 1",
        (gen.parcel_id,)).fetchall())
    assert set(counts) <= set(LAND_USE)
    assert counts["ODT"] > 0.6 * N_PARCELS  # urban residential dominates the centre
    assert len(counts) >= 5


def test_parcel_keys_unique_and_numeric(gen: Generated) -> None:
    dupes = gen.one("SELECT count(*) FROM (SELECT 1 FROM land_parcels GROUP BY ward_code, "
                    "map_sheet_no, parcel_no HAVING count(*) > 1) d")
    assert dupes == 0
    assert gen.one("SELECT bool_and(parcel_no ~ '^[0-9]+$' AND map_sheet_no ~ '^[0-9]+$') "
                   "FROM land_parcels WHERE id > %s", gen.parcel_id)


def test_parcels_do_not_overlap(gen: Generated) -> None:
    overlaps = gen.one(
        "SELECT count(*) FROM land_parcels a JOIN land_parcels b ON a.geom && b.geom "
        "AND a.id < b.id AND ST_Overlaps(a.geom, b.geom) WHERE a.id > %s AND b.id > %s",
        gen.parcel_id, gen.parcel_id)
    assert overlaps == 0


def test_central_hue_has_parcels_and_the_river_stays_empty(gen: Generated) -> None:
    central = gen.one("SELECT count(*) FROM land_parcels WHERE id > %s "
                      "AND geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)",
                      gen.parcel_id, *CENTRAL_HUE_BBOX)
    assert central > 0.9 * N_PARCELS
    in_river = gen.one("SELECT count(*) FROM land_parcels WHERE id > %s AND ST_DWithin("
                       "geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, 60)",
                       gen.parcel_id, *TRUONG_TIEN_LONLAT)
    assert in_river == 0
    imperial = gen.one("SELECT (SELECT land_use FROM land_parcels WHERE id > %s AND "
                       "ST_Intersects(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) LIMIT 1)",
                       gen.parcel_id, *DAI_NOI_LONLAT)
    assert imperial in (None, "DVH")  # the Imperial City is heritage land


def _parcel_digest(conn: psycopg.Connection, after: int) -> str:
    return conn.execute(
        "SELECT md5(string_agg(concat_ws('|', parcel_no, map_sheet_no, land_use, area_m2, "
        "zoning, owner_type, owner_name, ward_code, address, encode(ST_AsEWKB(geom), 'hex')), "
        "',' ORDER BY id)) FROM land_parcels WHERE id > %s", (after,)).fetchone()[0]


def test_parcels_are_deterministic(gen: Generated) -> None:
    digests = []
    for seed in (7, 7, 8):
        with gen.conn.transaction(force_rollback=True):  # a savepoint, rolled back
            after = _max_ids(gen.conn)[0]
            synth.generate_parcels(gen.conn, 500, seed)
            digests.append(_parcel_digest(gen.conn, after))
    assert digests[0] == digests[1] != digests[2]


def test_parcels_fill_the_communes_once_the_wards_are_full(database_url: str) -> None:
    """The first parcels of the communes come after every urban ward lot."""
    with psycopg.connect(database_url) as conn:
        ctx = synth._context(conn, SEED)
        cells = synth._cells(ctx, SEED)
        assert cells.urban[0] and not cells.urban[-1]
        assert not (cells.urban[1:] & ~cells.urban[:-1]).any()  # all urban cells first


# ----------------------------------------------------------------------------- construction
PERMIT = {"submitted", "approved", "rejected", "under_construction", "completed", "expired"}
VIOLATION = {"detected", "fined", "remedied", "demolished"}


def test_construction_records(gen: Generated) -> None:
    rows = gen.conn.execute(
        "SELECT record_no, kind, work_type, status, applicant_type, issued_on, expires_on, "
        "floors, footprint_m2, ward_code, inspector_notes, source FROM construction "
        "WHERE id > %s", (gen.construction_id,)).fetchall()
    assert len(rows) == N_CONSTRUCTION
    kinds = {r[1] for r in rows}
    assert kinds == {"permit", "violation"}
    for (no, kind, work, status, applicant, issued, expires, floors, area, ward, notes,
         source) in rows:
        prefix = "GPXD" if kind == "permit" else "VPXD"
        assert re.fullmatch(prefix + r"-20(19|2[0-6])-\d{6}", no)
        assert status in (PERMIT if kind == "permit" else VIOLATION)
        assert work in CONSTRUCTION.field("work_type").choices
        assert applicant in CONSTRUCTION.field("applicant_type").choices
        assert (floors is None) == (work == "fence")
        assert floors is None or 1 <= floors <= 15
        assert area > 0 and ward and notes and source == "synthetic"
        if issued and expires:
            assert issued < expires
        if status == "submitted":
            assert issued is None
    assert sum(r[7] is not None and r[7] > 9 for r in rows) < 0.05 * len(rows)


def test_construction_footprints_inside_parcels(gen: Generated) -> None:
    stray, worst, valid = gen.conn.execute(
        "SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM land_parcels p "
        "WHERE p.geom && c.geom AND ST_Within(c.geom, p.geom))), "
        "max(abs(footprint_m2 / ST_Area(c.geom::geography) - 1)), "
        "bool_and(ST_IsValid(c.geom) AND GeometryType(c.geom) = 'MULTIPOLYGON') "
        "FROM construction c WHERE c.id > %s", (gen.construction_id,)).fetchone()
    assert stray == 0 and worst < 0.01 and valid


def test_construction_without_parcels_uses_generated_lots(gen: Generated) -> None:
    with gen.conn.transaction(force_rollback=True):
        gen.conn.execute("DELETE FROM construction")
        gen.conn.execute("DELETE FROM land_parcels")
        assert synth.generate_construction(gen.conn, 50, SEED) == 50
        inside = gen.one("SELECT bool_and(ST_Within(c.geom, w.geom)) FROM construction c "
                         "JOIN wards w ON w.gso_code = c.ward_code")
    assert inside


# -------------------------------------------------------------------------------- incidents
def test_incidents_attributes(gen: Generated) -> None:
    c = gen.conn
    after = gen.incident_id
    rows = c.execute(
        "SELECT category, status, priority, channel, count(*) FROM incidents WHERE id > %s "
        "GROUP BY 1, 2, 3, 4", (after,)).fetchall()
    total = sum(r[4] for r in rows)
    assert total == N_INCIDENTS
    assert {r[0] for r in rows} == set(INCIDENT_CATEGORIES)
    assert {r[1] for r in rows} <= set(INCIDENT_STATUSES)
    processed = sum(r[4] for r in rows if r[1] in ("resolved", "rejected", "duplicate"))
    assert 0.96 <= processed / total <= 0.99
    urgent = sum(r[4] for r in rows if r[2] == "urgent")
    assert 0.02 <= urgent / total <= 0.09
    by_channel = {ch: sum(r[4] for r in rows if r[3] == ch) for ch in ("app", "hotline", "web",
                                                                       "open311")}
    assert by_channel["app"] > total / 2 and min(by_channel.values()) > 0
    refs_ok, dates_ok, private_ok = c.execute(
        "SELECT bool_and(ref ~ '^PA-20(19|2[0-6])-[0-9]{7}$'), "
        "bool_and(created_at >= '2019-01-01T00:00+07' AND created_at <= '2026-11-25T23:59+07' "
        "AND sla_due_at > created_at AND updated_at >= created_at "
        "AND (resolved_at IS NULL OR resolved_at > created_at)), "
        "bool_and(reporter_name IS NOT NULL AND (reporter_phone IS NOT NULL "
        "OR reporter_email IS NOT NULL)) FROM incidents WHERE id > %s", (after,)).fetchone()
    assert refs_ok and dates_ok and private_ok


def test_incidents_open_ones_are_recent_and_satisfaction(gen: Generated) -> None:
    c = gen.conn
    open_age, processed_age = c.execute(
        "SELECT avg('2026-11-25'::date - created_at::date) FILTER (WHERE status IN "
        "('received', 'assigned', 'in_progress', 'reopened')), "
        "avg('2026-11-25'::date - created_at::date) FILTER (WHERE status = 'resolved') "
        "FROM incidents WHERE id > %s", (gen.incident_id,)).fetchone()
    assert open_age < processed_age / 3
    satisfied, rated, unresolved_ratings = c.execute(
        "SELECT avg((rating >= 4)::int) FILTER (WHERE rating IS NOT NULL), "
        "avg((rating IS NOT NULL)::int) FILTER (WHERE status = 'resolved'), "
        "count(*) FILTER (WHERE rating IS NOT NULL AND status <> 'resolved') "
        "FROM incidents WHERE id > %s", (gen.incident_id,)).fetchone()
    assert 0.86 <= satisfied <= 0.97
    assert rated > 0.7 and unresolved_ratings == 0


def test_incidents_drainage_peaks_in_flood_season(gen: Generated) -> None:
    share = gen.one(
        "SELECT avg((extract(month FROM created_at AT TIME ZONE 'Asia/Ho_Chi_Minh') "
        "IN (10, 11))::int) FROM incidents WHERE id > %s AND category = 'drainage'",
        gen.incident_id)
    assert share > 0.5
    per_year = gen.conn.execute(
        "SELECT extract(year FROM created_at AT TIME ZONE 'Asia/Ho_Chi_Minh'), count(*) "
        "FROM incidents WHERE id > %s GROUP BY 1 ORDER BY 1", (gen.incident_id,)).fetchall()
    assert per_year[0][0] == 2019 and per_year[-1][0] == 2026
    assert per_year[-2][1] > 2 * per_year[0][1]  # growing volume


def test_incidents_lie_in_their_ward(gen: Generated) -> None:
    wrong, urban = gen.conn.execute(
        "SELECT count(*) FILTER (WHERE NOT ST_Intersects(w.geom, i.geom)), "
        "avg((w.unit_type = 'Phường')::int) FROM incidents i "
        "JOIN wards w ON w.gso_code = i.ward_code WHERE i.id > %s",
        (gen.incident_id,)).fetchone()
    assert wrong == 0 and urban > 0.6


def test_incident_events_tell_a_consistent_story(gen: Generated) -> None:
    c = gen.conn
    after = gen.incident_id
    assert c.execute(
        "SELECT count(*) FROM incidents i WHERE i.id > %s AND NOT EXISTS "
        "(SELECT 1 FROM incident_events e WHERE e.incident_id = i.id)", (after,)
    ).fetchone()[0] == 0
    # Each status change starts from the status the previous one ended in.
    broken = c.execute(
        "SELECT count(*) FROM (SELECT from_status, to_status, lag(to_status) OVER w AS prev, "
        "row_number() OVER w AS k FROM incident_events WHERE incident_id > %s "
        "AND to_status IS NOT NULL WINDOW w AS (PARTITION BY incident_id ORDER BY at, id)) s "
        "WHERE (k = 1 AND (from_status IS NOT NULL OR to_status <> 'received')) "
        "OR (k > 1 AND from_status IS DISTINCT FROM prev)", (after,)).fetchone()[0]
    assert broken == 0
    # The first event is the report itself; the last status change is the current status;
    # updated_at is the last event; resolved_at is the last resolution.
    mismatch = c.execute(
        "SELECT count(*) FROM incidents i CROSS JOIN LATERAL (SELECT "
        "min(at) AS first_at, max(at) AS last_at, "
        "(array_agg(to_status ORDER BY at DESC, id DESC) FILTER (WHERE to_status IS NOT NULL)"
        ")[1] AS last_status, max(at) FILTER (WHERE to_status = 'resolved') AS resolved_at, "
        "bool_and(at <= '2026-11-25T12:00+07') AS past "
        "FROM incident_events e WHERE e.incident_id = i.id) e WHERE i.id > %s AND NOT ("
        "e.first_at = i.created_at AND e.last_at = i.updated_at AND e.past "
        "AND e.last_status = i.status AND (i.status <> 'resolved' "
        "OR e.resolved_at = i.resolved_at) AND (i.status = 'resolved') = "
        "(i.resolved_at IS NOT NULL))", (after,)).fetchone()[0]
    assert mismatch == 0
    kinds = {r[0] for r in c.execute(
        "SELECT DISTINCT kind FROM incident_events WHERE incident_id > %s", (after,))}
    assert {"received", "assigned", "in_progress", "resolved", "rated"} <= kinds
    dup_ok = c.execute(
        "SELECT bool_and(o.ref IS NOT NULL AND o.category = i.category "
        "AND o.created_at <= i.created_at) FROM incident_events e "
        "JOIN incidents i ON i.id = e.incident_id "
        "LEFT JOIN incidents o ON o.ref = e.data->>'duplicate_of' "
        "WHERE e.incident_id > %s AND e.kind = 'duplicate'", (after,)).fetchone()[0]
    assert dup_ok is not False


def _incident_digest(conn: psycopg.Connection, after: int) -> tuple[str, str]:
    """Digest of the incidents with id > ``after`` and of their events (ids made relative)."""
    return conn.execute(
        "WITH base AS (SELECT min(id) AS id0 FROM incidents WHERE id > %s) "
        "SELECT (SELECT md5(string_agg(concat_ws('|', id - id0, ref, category, description, "
        "status, priority, channel, address, ward_code, reporter_name, reporter_phone, "
        "reporter_email, sla_due_at, resolved_at, rating, created_at, updated_at, "
        "ST_AsText(geom)), ',' ORDER BY id)) FROM incidents, base WHERE id > %s), "
        "(SELECT md5(string_agg(concat_ws('|', incident_id - id0, at, actor, kind, "
        "from_status, to_status, note, data), ',' ORDER BY incident_id, at, kind)) "
        "FROM incident_events, base WHERE incident_id > %s)",
        (after, after, after)).fetchone()


def test_incidents_are_deterministic(gen: Generated) -> None:
    digests = []
    for seed in (5, 5, 6):
        with gen.conn.transaction(force_rollback=True):
            after = _max_ids(gen.conn)[2]
            synth.generate_incidents(gen.conn, 300, seed)
            digests.append(_incident_digest(gen.conn, after))
    assert digests[0] == digests[1] != digests[2]


# ---------------------------------------------------------------------------------- cleanup
def test_progress_and_delete_synthetic(gen: Generated) -> None:
    c = gen.conn
    with c.transaction(force_rollback=True):
        c.execute(
            "INSERT INTO land_parcels (parcel_no, map_sheet_no, land_use, ward_code, source, "
            "geom) VALUES ('1', '999', 'ODT', '19753', 'import', ST_Multi(ST_Buffer("
            "ST_SetSRID(ST_MakePoint(107.58, 16.47), 4326), 0.0001)))")
        steps: list[int] = []
        assert synth.generate_parcels(c, 120, SEED, steps.append) == 120
        assert sum(steps) == 120
        steps.clear()
        assert synth.generate_incidents(c, 50, SEED, steps.append) == 50
        assert sum(steps) == 50
        assert synth.generate_construction(c, 10, SEED) == 10
        synth.delete_synthetic(c)
        left = c.execute(
            "SELECT (SELECT count(*) FROM land_parcels WHERE source = 'synthetic'), "
            "(SELECT count(*) FROM construction WHERE source = 'synthetic'), "
            "(SELECT count(*) FROM incidents WHERE source = 'synthetic'), "
            "(SELECT count(*) FROM incident_events e LEFT JOIN incidents i "
            "ON i.id = e.incident_id WHERE i.id IS NULL), "
            "(SELECT count(*) FROM land_parcels WHERE source = 'import')").fetchone()
    assert left[:4] == (0, 0, 0, 0) and left[4] >= 1


def test_zero_rows(gen: Generated) -> None:
    assert synth.generate_parcels(gen.conn, 0) == 0
    assert synth.generate_construction(gen.conn, 0) == 0
    assert synth.generate_incidents(gen.conn, 0) == 0


def test_generators_need_the_real_data_first(empty_database: str) -> None:
    import psycopg
    import pytest

    from gis import db
    from gis.errors import DataMissing
    from gis.synth import generate_parcels

    db.migrate(empty_database)
    with psycopg.connect(empty_database) as conn, pytest.raises(DataMissing, match="wards"):
        generate_parcels(conn, 10)
