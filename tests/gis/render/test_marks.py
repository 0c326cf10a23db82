"""Incident markers thinned ahead (migration 0012): ``incident_marks`` always holds the newest
report per cell of each level, whatever the writes, checked against numpy; the renderer's
thinning from them equals the thinning of every report at the zoom scales of tiles."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import psycopg
import pytest

from gis.render import style
from gis.settings import Settings
from layers import VECTOR_LAYERS
from layers.incidents import SENSITIVE_CATEGORIES
from tests.common import DAI_NOI_LONLAT

WORLD = 40075016.685578488
INCIDENTS = VECTOR_LAYERS["incidents"]


@pytest.fixture
def conn(demo_settings: Settings) -> Iterator[psycopg.Connection]:
    """The demo database, every change rolled back after the test."""
    with psycopg.connect(demo_settings.dsn) as c:
        yield c
        c.rollback()


def _levels(conn: psycopg.Connection) -> list[int]:
    """The stored levels: those an image at 256-pixel zooms 14–16 reads (8-pixel cells)."""
    return [conn.execute("SELECT huegis_mark_level(%s)", (8 * WORLD / (256 * 2 ** z),))
            .fetchone()[0] for z in (14, 15, 16)]


def test_levels_follow_the_zooms_drawn_in_detail(conn: psycopg.Connection) -> None:
    assert _levels(conn) == [19, 20, 21]
    stored = [r[0] for r in conn.execute("SELECT DISTINCT level FROM incident_marks ORDER BY 1")]
    assert stored == [19, 20, 21]
    # Finer than the finest level, or no size at all: no level (the reports are read).
    assert conn.execute("SELECT huegis_mark_level(%s), huegis_mark_level(0)",
                        (8 * WORLD / (256 * 2 ** 17),)).fetchone() == (None, None)


def _expected(conn: psycopg.Connection) -> set[tuple[int, int, int, int, str]]:
    """(level, col, row, id, status) of the newest report per cell, from the public points
    (numpy)."""
    found = conn.execute("SELECT id, ST_X(geom_3857), ST_Y(geom_3857), status FROM incidents "
                         "WHERE geom_3857 IS NOT NULL").fetchall()
    rows = np.array([r[:3] for r in found])
    status = {int(r[0]): r[3] for r in found}
    out = set()
    for level in _levels(conn):
        size = WORLD / 2 ** level
        cols, rws = np.floor(rows[:, 1] / size), np.floor(rows[:, 2] / size)
        newest: dict[tuple[int, int], int] = {}
        for c, r, i in zip(cols.astype(int), rws.astype(int), rows[:, 0].astype(int),
                           strict=True):
            newest[c, r] = max(newest.get((c, r), i), i)
        out |= {(level, c, r, i, status[i]) for (c, r), i in newest.items()}
    return out


def _marks(conn: psycopg.Connection) -> set[tuple[int, int, int, int, str]]:
    return set(conn.execute('SELECT level, col, "row", id, status FROM incident_marks')
               .fetchall())


def _file(conn: psycopg.Connection, lon: float, lat: float, category: str = "roads") -> int:
    return conn.execute(
        "INSERT INTO incidents (ref, category, ward_code, geom) VALUES "
        "('PA-MARK-' || nextval('incidents_id_seq'), %s, '19753', "
        "ST_SetSRID(ST_MakePoint(%s, %s), 4326)) RETURNING id", (category, lon, lat)).fetchone()[0]


def test_marks_follow_every_write(conn: psycopg.Connection) -> None:
    assert len(_marks(conn)) > 1000
    assert _marks(conn) == _expected(conn)
    lon, lat = DAI_NOI_LONLAT
    # New reports: three in one spot (the newest wins its cells), one elsewhere; one statement.
    ids = [r[0] for r in conn.execute(
        "INSERT INTO incidents (ref, category, ward_code, geom) SELECT 'PA-MARK-' || g, "
        "'roads', '19753', ST_SetSRID(ST_MakePoint(%s + (g / 4) * 0.01, %s), 4326) "
        "FROM generate_series(1, 4) AS g RETURNING id", (lon, lat)).fetchall()]
    assert _marks(conn) == _expected(conn)
    assert max(ids) in {m[3] for m in _marks(conn)}
    # A single new report (the Open311 path), then deleting the newest of a cell.
    one = _file(conn, lon + 0.002, lat)
    assert _marks(conn) == _expected(conn)
    conn.execute("DELETE FROM incidents WHERE id = ANY(%s)", ([one, max(ids)],))
    assert _marks(conn) == _expected(conn)
    # A report moved, and one whose category becomes sensitive (its public point rounded).
    conn.execute("UPDATE incidents SET geom = ST_SetSRID(ST_MakePoint(%s, %s), 4326) "
                 "WHERE id = %s", (lon - 0.003, lat + 0.001, min(ids)))
    conn.execute("UPDATE incidents SET category = %s WHERE id = %s",
                 (sorted(SENSITIVE_CATEGORIES)[0], sorted(ids)[1]))
    assert _marks(conn) == _expected(conn)
    # New statuses recolour the markers (a batch, as the staff API or a bulk update does).
    conn.execute("UPDATE incidents SET status = 'in_progress' WHERE id = ANY(%s)", (ids,))
    conn.execute("UPDATE incidents SET status = 'resolved' WHERE id = ANY(%s)", (ids[:2],))
    assert _marks(conn) == _expected(conn)
    conn.execute("SELECT huegis_incident_marks_rebuild()")
    assert _marks(conn) == _expected(conn)


def test_markers_carry_what_the_style_draws_with(conn: psycopg.Connection) -> None:
    """Every clustered layer's markers table (``Generalize.marks`` in the catalog) holds the
    fields the renderer draws the layer with."""
    marked = [layer for layer in VECTOR_LAYERS.values()
              if layer.generalize is not None and layer.generalize.marks is not None]
    assert INCIDENTS in marked
    for layer in marked:
        drawn = {f for f in (style.classify_field(layer), style.label_field(layer)) if f}
        columns = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
            (layer.generalize.marks,))}
        assert drawn and drawn | {"level", "col", "row", "id", "geom_3857"} <= columns


@pytest.mark.parametrize("z", [15, 16])
def test_thinning_from_marks_equals_thinning_every_report(conn: psycopg.Connection,
                                                          z: int) -> None:
    """At a tile's scale the image's cells are a stored level's: the same markers (ids and
    points) as thinning every report in view, by the renderer's own query."""
    layer = INCIDENTS
    view = next(v for v in style.zoom_views(layer) if v.mode == "detail")
    sql = style.datasource_sql(layer, 3857, True, view)
    assert "incident_marks" in sql
    pixel = WORLD / (256 * 2 ** z)
    lon, lat = DAI_NOI_LONLAT
    x, y = conn.execute("SELECT ST_X(g), ST_Y(g) FROM ST_Transform(ST_SetSRID("
                        "ST_MakePoint(%s, %s), 4326), 3857) AS g", (lon, lat)).fetchone()
    half = 512 * pixel
    bbox = f"ST_MakeEnvelope({x - half}, {y - half}, {x + half}, {y + half}, 3857)"
    mine = conn.execute(
        f"SELECT ST_AsText(geom), status FROM {sql.replace('!bbox!', bbox)}"  # noqa: S608
        .replace("!pixel_width!", repr(pixel))).fetchall()
    cell = pixel * 2 * layer.style.radius
    # Each cell's newest report (read one cell beyond the image, so that a cell across its
    # edge is judged whole), those in the image.
    reference = conn.execute(
        "SELECT t, status FROM (SELECT DISTINCT ON (floor(ST_X(geom_3857) / %(c)s), "
        "floor(ST_Y(geom_3857) / %(c)s)) ST_AsText(geom_3857) AS t, geom_3857, status "
        f"FROM incidents_public WHERE geom_3857 && ST_Expand({bbox}, %(c)s) "  # noqa: S608
        "ORDER BY floor(ST_X(geom_3857) / %(c)s), floor(ST_Y(geom_3857) / %(c)s), id DESC) s "
        f"WHERE geom_3857 && {bbox}", {"c": cell}).fetchall()
    assert len(reference) > 50
    assert sorted(mine) == sorted(reference)
