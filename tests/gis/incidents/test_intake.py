"""Intake at the gis level: routing against shapely, concurrent retries with one
Idempotency-Key make one report, the first event commits with the report."""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid

import asyncpg
import psycopg
import pytest
import shapely

from gis.errors import OutsideHue
from gis.incidents.intake import NewReport, create_report
from gis.incidents.routing import route
from tests.common import DAI_NOI_LONLAT, HANOI_LONLAT


def _run(coro):
    """Run a coroutine on its own loop in a worker thread (whatever loop this thread has)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_route_matches_point_in_polygon(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        wards = {c: shapely.from_wkb(bytes(g)) for c, g in conn.execute(
            "SELECT gso_code, ST_AsBinary(geom) FROM admin_units WHERE level = 'ward'")}
    points = [shapely.point_on_surface(g) for g in wards.values()] + [
        shapely.Point(DAI_NOI_LONLAT)]

    async def go():
        conn = await asyncpg.connect(database_url)
        try:
            got = [await route(conn, p.x, p.y) for p in points]
            with pytest.raises(OutsideHue):
                await route(conn, *HANOI_LONLAT)
            return got
        finally:
            await conn.close()

    for p, ward in zip(points, _run(go()), strict=True):
        assert wards[ward.code].intersects(p) and ward.distance_m == 0


def test_concurrent_retries_make_one_report(database_url: str) -> None:
    key = f"h6-{uuid.uuid4()}"
    report = NewReport(category="waste", lon=107.59, lat=16.46, description=f"trùng lặp? {key}")

    async def go():
        pool = await asyncpg.create_pool(database_url, min_size=4, max_size=8)
        try:
            return await asyncio.gather(*[
                create_report(pool, NewReport(**report.__dict__), "test", key)
                for _ in range(6)])
        finally:
            await pool.close()

    results = _run(go())
    assert len({row["id"] for row, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    with psycopg.connect(database_url) as conn:
        rid = results[0][0]["id"]
        assert conn.execute("SELECT count(*) FROM incident_events WHERE incident_id = %s",
                            (rid,)).fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM incidents WHERE description = %s",
                            (f"trùng lặp? {key}",)).fetchone()[0] == 1
