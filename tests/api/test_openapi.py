"""The OpenAPI document at ``/api``: one items path per collection with its public fields as
query parameters, described so that clients (QGIS ≥ 3.32's OAPIF provider: "simple
queryables") send property filters to the server."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from gis.settings import Settings
from layers import VECTOR_LAYERS

JSON_TYPE = {"text": "string", "int": "integer", "float": "number", "bool": "boolean",
             "date": "string", "datetime": "string"}


@pytest.fixture(scope="module")
def client(demo_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(demo_settings)) as c:
        yield c


def test_each_collection_lists_its_public_fields_as_query_parameters(client: TestClient
                                                                    ) -> None:
    doc = client.get("/api").json()
    assert "/collections/{collection_id}/items" in doc["paths"]
    operation_ids = [op.get("operationId") for path in doc["paths"].values()
                     for op in path.values() if isinstance(op, dict)]
    assert len(operation_ids) == len(set(operation_ids))  # still unique
    for lid, layer in VECTOR_LAYERS.items():
        get = doc["paths"][f"/collections/{lid}/items"]["get"]
        params = {p["name"]: p for p in get["parameters"]}
        assert not [p for p in params.values() if p["in"] == "path"], lid
        assert {"bbox", "limit", "filter", "datetime"} <= set(params), lid
        for f in layer.public_fields:
            p = params[f.name]  # QGIS reads exactly these keys (form, not exploded, a type)
            assert (p["in"], p["style"], p["explode"]) == ("query", "form", False), f.name
            assert p["schema"]["type"] == JSON_TYPE[f.type], f.name
        assert not {f.name for f in layer.private_fields} & set(params), lid
    # The document is made once per app (the same object on every request).
    assert client.get("/api").json() == doc


def test_a_documented_property_parameter_filters_on_the_server(
        client: TestClient, demo_settings: Settings) -> None:
    doc = client.get("/api").json()
    names = {p["name"] for p in doc["paths"]["/collections/parcels/items"]["get"]["parameters"]}
    assert "land_use" in names
    with psycopg.connect(demo_settings.dsn) as conn:
        want, = conn.execute("SELECT count(*) FROM land_parcels WHERE land_use = 'TON'").fetchone()
    r = client.get("/collections/parcels/items", params={"land_use": "TON", "limit": 10000})
    assert r.status_code == 200
    body = r.json()
    assert body["numberMatched"] == len(body["features"]) == want > 0
    assert {f["properties"]["land_use"] for f in body["features"]} == {"TON"}
