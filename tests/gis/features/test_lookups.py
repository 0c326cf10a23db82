"""Issue 10: lookups by key use the index (EXPLAIN), deep offsets are a seek or a 400."""

from __future__ import annotations

import concurrent.futures
import re
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from gis import features
from gis.features.items import ItemsQuery
from gis.settings import Settings
from layers import VECTOR_LAYERS


@pytest.fixture(scope="module")
def demo(demo_settings: Settings) -> Iterator[psycopg.Connection]:
    with psycopg.connect(demo_settings.dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE land_parcels")  # visibility map: index-only seeks
        conn.execute("ANALYZE incidents")
        yield conn


def _plan(dsn: str, sql: str, *params: object) -> str:
    """EXPLAIN of an asyncpg-style ($n) statement, run through asyncpg as the API runs it."""
    import asyncio

    import asyncpg

    async def explain() -> str:
        c = await asyncpg.connect(dsn)
        try:
            return "\n".join(r[0] for r in await c.fetch("EXPLAIN " + sql, *params))
        finally:
            await c.close()

    # In a thread of its own: another test may have left an event loop running here.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, explain()).result()


@pytest.mark.parametrize(("layer_id", "value", "index"), [
    ("parcels", 1234, "land_parcels_pkey"),
    ("incidents", 321, "incidents_pkey"),
    ("construction", 12, "construction_pkey"),
    ("wards", "19753", "admin_units_gso_code_key"),
])
def test_feature_by_id_uses_the_index(demo: psycopg.Connection, demo_settings: Settings,
                                      layer_id: str, value: object, index: str) -> None:
    plan = _plan(demo_settings.dsn, features.item_sql(VECTOR_LAYERS[layer_id]), value)
    assert f"Index Scan using {index}" in plan and "Seq Scan" not in plan, plan


def test_feature_ids_are_parsed_as_the_column_type() -> None:
    parcels, wards = VECTOR_LAYERS["parcels"], VECTOR_LAYERS["wards"]
    assert features.feature_id(parcels, "42") == 42
    assert features.feature_id(parcels, "42.0") is None
    assert features.feature_id(parcels, "9" * 30) is None
    assert features.feature_id(wards, "19753") == "19753"


def test_offset_on_default_order_is_an_index_seek(demo: psycopg.Connection,
                                                  demo_settings: Settings) -> None:
    layer = VECTOR_LAYERS["parcels"]
    sql, params = features.items_sql(layer, ItemsQuery(limit=10, offset=9000))
    plan = _plan(demo_settings.dsn, sql, *params)
    assert "Index Only Scan using land_parcels_pkey" in plan, plan
    ids = [r[0] for r in demo.execute("SELECT id FROM land_parcels ORDER BY id").fetchall()]
    ordered: list[object] = []

    def bind(m: re.Match) -> str:
        ordered.append(params[int(m.group(1)) - 1])
        return "%s"

    got = [r[1] for r in demo.execute(re.sub(r"\$(\d+)", bind, sql), ordered).fetchall()]
    assert got == ids[9000:9011]


def test_deep_offset_is_bounded_and_points_to_next(demo_settings: Settings) -> None:
    capped = demo_settings.model_copy(update={"max_items_offset": 500})
    with TestClient(create_app(capped)) as c:
        ok = c.get("/collections/parcels/items", params={"offset": 500, "limit": 3})
        assert ok.status_code == 200 and ok.json()["numberReturned"] == 3
        deep = c.get("/collections/parcels/items", params={"offset": 501, "limit": 3})
        assert deep.status_code == 400 and "next" in deep.json()["description"]
        with_sort = c.get("/collections/parcels/items",
                          params={"offset": 498, "limit": 3, "sortby": "area_m2"}).json()
        assert not any(link["rel"] == "next" for link in with_sort["links"])
        whole = c.get("/collections/parcels/items", params={"limit": 503}).json()
        assert [f["id"] for f in ok.json()["features"]] == [
            f["id"] for f in whole["features"][500:503]]
