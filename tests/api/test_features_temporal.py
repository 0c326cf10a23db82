"""CQL2 temporal functions (class temporal-functions) on the demo data: every operator, in
cql2-text and cql2-json, against a recount in Python of the same rows.

The reference intervals are cut around one real incident (created and resolved) and one
real construction permit (issued and expiring), so that every relation, the ones that need
equal ends included, selects some rows and not all of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from gis.settings import Settings

ITEMS = "/collections/{}/items"
TEMPORAL_CLASS = "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions"

# The CQL2 definitions (OGC 21-065r2, temporal functions), for intervals a and b given as
# (start, end); an instant t is (t, t). Written here in Python from the standard's table.
RELATIONS: dict[str, Callable[[tuple, tuple], bool]] = {
    "T_AFTER": lambda a, b: a[0] > b[1],
    "T_BEFORE": lambda a, b: a[1] < b[0],
    "T_CONTAINS": lambda a, b: a[0] < b[0] and a[1] > b[1],
    "T_DISJOINT": lambda a, b: a[1] < b[0] or a[0] > b[1],
    "T_DURING": lambda a, b: b[0] < a[0] and a[1] < b[1],
    "T_EQUALS": lambda a, b: a == b,
    "T_FINISHEDBY": lambda a, b: a[0] < b[0] and a[1] == b[1],
    "T_FINISHES": lambda a, b: a[0] > b[0] and a[1] == b[1],
    "T_INTERSECTS": lambda a, b: not (a[1] < b[0] or a[0] > b[1]),
    "T_MEETS": lambda a, b: a[1] == b[0],
    "T_METBY": lambda a, b: a[0] == b[1],
    "T_OVERLAPPEDBY": lambda a, b: b[0] < a[0] < b[1] < a[1],
    "T_OVERLAPS": lambda a, b: a[0] < b[0] < a[1] < b[1],
    "T_STARTEDBY": lambda a, b: a[0] == b[0] and a[1] > b[1],
    "T_STARTS": lambda a, b: a[0] == b[0] and a[1] < b[1],
}
JSON_NAMES = {"T_METBY": "t_metBy", "T_OVERLAPPEDBY": "t_overlappedBy",
              "T_STARTEDBY": "t_startedBy", "T_FINISHEDBY": "t_finishedBy"}
DAY = timedelta(days=1)
MIN, MAX = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def client(demo_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(demo_settings)) as c:
        yield c


def _all(client: TestClient, layer: str) -> list[dict]:
    body = client.get(ITEMS.format(layer), params={"limit": 10000}).json()
    assert body["numberMatched"] == len(body["features"]) > 100
    return body["features"]


@pytest.fixture(scope="module")
def incidents(client: TestClient) -> list[dict]:
    return _all(client, "incidents")


@pytest.fixture(scope="module")
def construction(client: TestClient) -> list[dict]:
    return _all(client, "construction")


def _ts(v: str | None) -> datetime | None:
    return datetime.fromisoformat(v) if v else None


def _d(v: str | None) -> date | None:
    return date.fromisoformat(v) if v else None


def _text_ts(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _ids(r) -> set:
    assert r.status_code == 200, r.text
    return {f["id"] for f in r.json()["features"]}


# ---------------------------------------------------------------------- incidents (µs)
def _long_incident(incidents: list[dict]) -> tuple[datetime, datetime]:
    """created_at, resolved_at of a resolved incident that took more than an hour."""
    for f in incidents:
        a, b = _ts(f["properties"]["created_at"]), _ts(f["properties"]["resolved_at"])
        if a and b and b - a > timedelta(hours=1):
            return a, b
    raise AssertionError("no resolved incident in the demo")


def _incident_cases(x0: datetime, x1: datetime) -> list[tuple[str, str, tuple, tuple]]:
    """(operator, lhs, reference (start, end), its two CQL2 ends) for each operator."""
    third = (x1 - x0) / 3
    mid = x0 + third
    month = (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 31, 23, 59, 59, 999999,
                                                        tzinfo=UTC))
    month_text = ("2025-03-01", "2025-03-31")  # dates: the whole days
    both = "INTERVAL(created_at, resolved_at)"
    cases = [
        ("T_EQUALS", both, (x0, x1)),
        ("T_MEETS", both, (x1, MAX)),
        ("T_METBY", both, (MIN, x0)),
        ("T_STARTS", both, (x0, x1 + DAY)),
        ("T_STARTEDBY", both, (x0, mid)),
        ("T_FINISHES", both, (x0 - DAY, x1)),
        ("T_FINISHEDBY", both, (mid, x1)),
        ("T_CONTAINS", both, (mid, mid + third)),
        ("T_OVERLAPS", both, (mid, x1 + DAY)),
        ("T_OVERLAPPEDBY", both, (x0 - DAY, mid)),
        ("T_DURING", both, (x0 - DAY, x1 + DAY)),
        ("T_INTERSECTS", both, (x0, x0)),
        ("T_BEFORE", both, month),
        ("T_AFTER", both, month),
        ("T_DISJOINT", both, month),
        ("T_DURING", both, month),
        # An instant property against literal intervals and instants.
        ("T_MEETS", "created_at", (x0, MAX)),
        ("T_METBY", "created_at", (MIN, x0)),
        ("T_STARTS", "created_at", (x0, x1)),
        ("T_FINISHES", "created_at", (x0 - DAY, x0)),
        ("T_EQUALS", "created_at", (x0, x0)),
        ("T_DURING", "created_at", month),
        ("T_INTERSECTS", "created_at", month),
        ("T_DISJOINT", "created_at", month),
        ("T_BEFORE", "created_at", month),
        ("T_AFTER", "created_at", month),
    ]
    out = []
    for op, lhs, ref in cases:
        if ref is month:
            ends = month_text
        else:
            ends = tuple(".." if t in (MIN, MAX) else _text_ts(t) for t in ref)
        out.append((op, lhs, ref, ends))
    return out


def _incident_interval(f: dict, lhs: str) -> tuple | None:
    p = f["properties"]
    a = _ts(p["created_at"])
    if lhs == "created_at":
        return (a, a) if a else None
    b = _ts(p["resolved_at"])
    return (a, b) if a and b else None


def _cql2_text(op: str, lhs: str, ends: tuple[str, str]) -> str:
    if ends[0] == ends[1] and lhs == "created_at":
        return f"{op}({lhs}, TIMESTAMP('{ends[0]}'))"
    return f"{op}({lhs}, INTERVAL('{ends[0]}', '{ends[1]}'))"


def _cql2_json(op: str, lhs: str, ends: tuple[str, str]) -> str:
    if lhs.startswith("INTERVAL"):
        left = {"interval": [{"property": "created_at"}, {"property": "resolved_at"}]}
    else:
        left = {"property": lhs}
    right = ({"timestamp": ends[0]} if ends[0] == ends[1] and lhs == "created_at"
             else {"interval": list(ends)})
    return json.dumps({"op": JSON_NAMES.get(op, op.lower()), "args": [left, right]})


def test_every_temporal_operator_on_incidents_matches_python(client: TestClient,
                                                             incidents) -> None:
    x0, x1 = _long_incident(incidents)
    seen = set()
    for op, lhs, ref, ends in _incident_cases(x0, x1):
        expected = {f["id"] for f in incidents
                    if (a := _incident_interval(f, lhs)) is not None and RELATIONS[op](a, ref)}
        assert 0 < len(expected) < len(incidents), (op, lhs, ends, len(expected))
        for lang, text in (("cql2-text", _cql2_text(op, lhs, ends)),
                           ("cql2-json", _cql2_json(op, lhs, ends))):
            got = _ids(client.get(ITEMS.format("incidents"), params={
                "filter": text, "filter-lang": lang, "limit": 10000}))
            assert got == expected, (lang, text)
        seen.add(op)
    assert seen == set(RELATIONS)


def test_temporal_operators_at_the_ends_of_an_interval(client: TestClient, incidents) -> None:
    """References sharing one or both ends with an incident: where < and <= differ, the
    incident must be in or out exactly as the standard says (the sets may be empty)."""
    x0, x1 = _long_incident(incidents)
    both = "INTERVAL(created_at, resolved_at)"
    refs = [(x0, x1), (x0, x0), (x1, x1), (x1, MAX), (MIN, x0), (x0, MAX), (MIN, x1)]
    for op in RELATIONS:
        for ref in refs:
            ends = tuple(".." if t in (MIN, MAX) else _text_ts(t) for t in ref)
            expected = {f["id"] for f in incidents
                        if (a := _incident_interval(f, both)) is not None
                        and RELATIONS[op](a, ref)}
            got = _ids(client.get(ITEMS.format("incidents"), params={
                "filter": _cql2_text(op, both, ends), "limit": 10000}))
            assert got == expected, (op, ends)


# ------------------------------------------------------------------- construction (days)
def test_every_temporal_operator_on_date_properties_matches_python(client: TestClient,
                                                                   construction) -> None:
    """Dates compared in days: INTERVAL(issued_on, expires_on) against date intervals."""
    y0, y1 = next((d0, d1) for f in construction
                  if (d0 := _d(f["properties"]["issued_on"]))
                  and (d1 := _d(f["properties"]["expires_on"])) and d1 - d0 > 3 * DAY)
    mid = y0 + (y1 - y0) // 3
    lo, hi = date.min, date.max
    refs = {"T_EQUALS": (y0, y1), "T_MEETS": (y1, hi), "T_METBY": (lo, y0),
            "T_STARTS": (y0, y1 + DAY), "T_STARTEDBY": (y0, mid), "T_FINISHES": (y0 - DAY, y1),
            "T_FINISHEDBY": (mid, y1), "T_CONTAINS": (mid, mid + DAY),
            "T_OVERLAPS": (mid, y1 + DAY), "T_OVERLAPPEDBY": (y0 - DAY, mid),
            "T_DURING": (y0 - DAY, y1 + DAY), "T_INTERSECTS": (y1, y1),
            "T_BEFORE": (y1, y1), "T_AFTER": (y0, y0), "T_DISJOINT": (mid, mid)}
    both = "INTERVAL(issued_on, expires_on)"
    for op, ref in refs.items():
        expected = set()
        for f in construction:
            a, b = _d(f["properties"]["issued_on"]), _d(f["properties"]["expires_on"])
            if a and b and RELATIONS[op]((a, b), ref):
                expected.add(f["id"])
        assert 0 < len(expected) < len(construction), (op, ref)
        ends = [".." if d in (lo, hi) else d.isoformat() for d in ref]
        right = (f"DATE('{ends[0]}')" if ref[0] == ref[1]
                 else f"INTERVAL('{ends[0]}', '{ends[1]}')")
        text = f"{op}({both}, {right})"
        js = json.dumps({"op": JSON_NAMES.get(op, op.lower()), "args": [
            {"interval": [{"property": "issued_on"}, {"property": "expires_on"}]},
            {"date": ends[0]} if ref[0] == ref[1] else {"interval": ends}]})
        for lang, f_ in (("cql2-text", text), ("cql2-json", js)):
            got = _ids(client.get(ITEMS.format("construction"), params={
                "filter": f_, "filter-lang": lang, "limit": 10000}))
            assert got == expected, (lang, f_)


def test_literal_interval_against_property_interval(client: TestClient, incidents) -> None:
    """The standard's own form: a literal first, the properties second."""
    x0, x1 = _long_incident(incidents)
    text = (f"T_OVERLAPPEDBY(INTERVAL('{_text_ts(x0 + timedelta(minutes=1))}', "
            f"'{_text_ts(x1 + DAY)}'), INTERVAL(created_at, resolved_at))")
    b = (x0 + timedelta(minutes=1), x1 + DAY)
    expected = {f["id"] for f in incidents if (a := _incident_interval(f, "both")) is not None
                and RELATIONS["T_OVERLAPPEDBY"](b, a)}
    assert expected and _ids(client.get(ITEMS.format("incidents"), params={
        "filter": text, "limit": 10000})) == expected


def test_temporal_functions_class_is_declared(client: TestClient) -> None:
    assert TEMPORAL_CLASS in client.get("/conformance").json()["conformsTo"]


@pytest.mark.parametrize("text", [
    "T_MEETS(created_at, INTERVAL('2025-02-01', '2025-01-01'))",  # ends before it starts
    "T_MEETS(INTERVAL(category, resolved_at), DATE('2025-01-01'))",  # not a time
    "T_MEETS(INTERVAL(reporter_name, resolved_at), DATE('2025-01-01'))",  # private
    "T_OVERLAPS(created_at, 5)",
    "T_NEVER(created_at, DATE('2025-01-01'))",
])
def test_bad_temporal_filters_are_400(client: TestClient, text: str) -> None:
    r = client.get(ITEMS.format("incidents"), params={"filter": text})
    assert r.status_code == 400 and r.json()["code"] == "InvalidParameterValue", r.text
    js = {"op": "t_meets", "args": [{"interval": [{"property": "created_at"}, 5]},
                                    {"date": "2025-01-01"}]}
    r = client.get(ITEMS.format("incidents"), params={"filter": json.dumps(js),
                                                      "filter-lang": "cql2-json"})
    assert r.status_code == 400 and r.json()["code"] == "InvalidParameterValue", r.text
