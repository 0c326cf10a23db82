"""OGC conformance classes this service implements, one list per capability.

``/conformance`` serves the union. A capability adds its classes here when (and only when) it
implements them, so the declaration never runs ahead of the code.
"""

from __future__ import annotations

CONFORMANCE: dict[str, tuple[str, ...]] = {
    "features": (
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    ),
    "crs": (),
    "filter": (),
    "transactions": (),
    "tiles": (),
    "maps": (),
    "styles": (),
}


def conformance_classes() -> list[str]:
    """Every class declared, sorted, without duplicates."""
    return sorted({c for classes in CONFORMANCE.values() for c in classes})
