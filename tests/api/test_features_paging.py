"""Keyset paging of items: ``next`` and ``prev`` links on the default order and with
``sortby`` (ascending, descending, several keys, nullable keys), and the ASGI fast path that
answers anonymous GeoJSON pages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.features import ItemsFastPath
from gis.settings import Settings

ITEMS = "/collections/{}/items"
CENTRAL = "107.575,16.458,107.588,16.468"


@pytest.fixture(scope="module")
def client(demo_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(demo_settings)) as c:
        yield c


def _link(page: dict, rel: str) -> str | None:
    return next((lk["href"] for lk in page["links"] if lk["rel"] == rel), None)


def _ids(page: dict) -> list:
    return [f["id"] for f in page["features"]]


ORDERS = [
    ("parcels", {"bbox": CENTRAL}),  # the default order, by id
    ("parcels", {"bbox": CENTRAL, "sortby": "-area_m2"}),
    ("parcels", {"bbox": CENTRAL, "sortby": "land_use,-area_m2"}),
    ("incidents", {"sortby": "+created_at"}),
    # A few ratings, then many nulls (nulls last): cursors holding nulls.
    ("incidents", {"sortby": "-rating,category", "filter": "rating = 1 OR rating IS NULL"}),
    ("incidents", {"sortby": "rating,-created_at", "filter": "rating = 1 OR rating IS NULL"}),
]


@pytest.mark.parametrize(("layer", "params"), ORDERS, ids=[str(p) for _, p in ORDERS])
def test_prev_from_page_k_is_page_k_minus_1(client: TestClient, layer: str,
                                            params: dict) -> None:
    everything = client.get(ITEMS.format(layer), params={**params, "limit": 10000}).json()
    whole = _ids(everything)
    # Where the first sort key turns null (nulls last), if it does: the pages walked below
    # cross that boundary, where a cursor holds a null.
    key = params.get("sortby", "").split(",")[0].lstrip("+-")
    nulls = [i for i, f in enumerate(everything["features"])
             if key and f["properties"][key] is None]
    limit = max(7, nulls[0] // 3 + 1) if nulls else 7
    n_pages = min(5, len(whole) // limit)
    assert n_pages >= 3 and (not nulls or nulls[0] < (n_pages - 1) * limit)
    first = client.get(ITEMS.format(layer), params={**params, "limit": limit}).json()
    assert _link(first, "prev") is None  # the first page has none
    pages = [first]
    for _ in range(n_pages - 1):  # forwards by next
        pages.append(client.get(_link(pages[-1], "next")).json())
    for k, page in enumerate(pages):
        assert _ids(page) == whole[k * limit:(k + 1) * limit], k  # the sorted order, paged
    page = pages[-1]
    for k in range(len(pages) - 1, 0, -1):  # back by prev, to the first page
        prev = client.get(_link(page, "prev")).json()
        assert _ids(prev) == _ids(pages[k - 1]), k
        assert prev["numberMatched"] == len(whole)
        # ... and next from there is page k again
        assert _ids(client.get(_link(prev, "next")).json()) == _ids(pages[k])
        page = prev
    assert _link(page, "prev") is None  # back on the first page: nothing before it


def test_prev_and_next_at_the_end(client: TestClient) -> None:
    params = {"sortby": "-created_at", "limit": 1000}
    whole = _ids(client.get(ITEMS.format("incidents"), params={**params, "limit": 10000}
                            ).json())
    page = client.get(ITEMS.format("incidents"), params=params).json()
    while _link(page, "next"):
        page = client.get(_link(page, "next")).json()
    assert _ids(page) == whole[-len(page["features"]):]  # the last page, shorter
    prev = client.get(_link(page, "prev")).json()
    n = len(whole) - len(page["features"])
    assert _ids(prev) == whole[n - 1000:n]


@pytest.mark.parametrize("params", [
    {"before": "x"},
    {"sortby": "-area_m2", "after": "5"},
    {"sortby": "-area_m2", "before": "WzEsMiwzXQ"},  # three values for two keys
    {"sortby": "-area_m2", "after": "WyJiaWciLCA1XQ"},  # ["big", 5]: not a number
    {"after": "5", "before": "9"},
    {"after": "5", "offset": "10"},
])
def test_bad_cursors_are_400(client: TestClient, params: dict) -> None:
    r = client.get(ITEMS.format("parcels"), params=params)
    assert r.status_code == 400 and r.json()["code"] == "InvalidParameterValue", r.text


def test_fast_path_answers_anonymous_geojson_pages(demo_settings: Settings,
                                                   client: TestClient) -> None:
    """The fast path in front of an app that refuses everything: what it answers is the
    route's page, byte for byte but the timeStamp; what it leaves reaches the app."""
    real = create_app(demo_settings)

    async def refuse(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    fast = ItemsFastPath(refuse, real.state)

    async def app(scope, receive, send) -> None:
        if scope["type"] == "lifespan":  # the real app's pools and settings
            return await real(scope, receive, send)
        return await fast(scope, receive, send)

    with TestClient(app) as c:
        for params in ({"bbox": CENTRAL, "limit": 5}, {"sortby": "-area_m2", "limit": 3},
                       {"filter": "land_use = 'ODT'", "properties": "land_use"}):
            got = c.get(ITEMS.format("parcels"), params=params)
            want = client.get(ITEMS.format("parcels"), params=params)
            assert got.status_code == 200 and got.headers["content-crs"] == \
                want.headers["content-crs"]
            a, b = got.json(), want.json()
            a.pop("timeStamp"), b.pop("timeStamp")
            assert a == b
        for params, headers in (({"f": "html"}, {}), ({"bbox": "1,2,3"}, {}),
                                ({"limit": "many"}, {}), ({}, {"X-API-Key": "k"}),
                                ({}, {"Accept": "text/csv"})):
            r = c.get(ITEMS.format("parcels"), params=params, headers=headers)
            assert r.status_code == 418, params  # left to the app
        assert c.get("/collections/nope/items").status_code == 418


def test_first_bbox_page_beyond_the_exact_count(demo_settings: Settings,
                                                client: TestClient) -> None:
    """A first page within a bbox reads the matches once for the page and the count; when
    more than HUEGIS_EXACT_COUNT_MAX match, the page is still the first by id and the count
    the planner's estimate."""
    params = {"bbox": CENTRAL, "limit": 5}
    whole = _ids(client.get(ITEMS.format("parcels"), params={**params, "limit": 10000}
                            ).json())
    assert len(whole) > 100
    capped = demo_settings.model_copy(update={"exact_count_max": 100})
    with TestClient(create_app(capped)) as c:
        page = c.get(ITEMS.format("parcels"), params=params).json()
        small = c.get(ITEMS.format("parcels"), params={**params, "land_use": "NTD"}).json()
    assert _ids(page) == whole[:5] and page["numberMatched"] > 100
    ntd = _ids(client.get(ITEMS.format("parcels"), params={
        **params, "land_use": "NTD", "limit": 10000}).json())
    assert _ids(small) == ntd[:5] and small["numberMatched"] == len(ntd) <= 100
