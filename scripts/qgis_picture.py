"""The QGIS picture of docs/clients.md: central Huế drawn by Debian's QGIS 3.22 (headless)
from a running Huế GIS, the way a planner's QGIS would connect: the wards through WMS
(rendered by the server), parcels, construction and tourism through OGC API Features (drawn
by QGIS, parcels coloured by land use with the catalog's colours).

    .venv/bin/python scripts/qgis_picture.py [--base http://127.0.0.1:8000] [--out FILE]

``FILE`` is docs/screenshots/qgis.png by default. The server must be running (``make run``);
QGIS must be installed (``make system``). QGIS runs in a child process through
``tests/api/qgis_client.py``, the same driver the tests use.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyproj

from gis.settings import PROJECT_ROOT
from layers.parcels import LAND_USE

sys.path.insert(0, str(PROJECT_ROOT))
from tests.api.qgis_client import oapif_uri, run_qgis, wms_uri  # noqa: E402  (the tests' QGIS driver)

# Central Huế around the Citadel and the Trường Tiền bridge, lon/lat.
CENTRE = (107.5865, 16.4640)
SIZE = (1200, 800)
METRES_PER_PIXEL = 3.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="http://127.0.0.1:8000")
    ap.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "screenshots" / "qgis.png")
    a = ap.parse_args()
    base = a.base.rstrip("/")
    x, y = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(*CENTRE)
    # Web Mercator metres are stretched by 1/cos(latitude) at Huế.
    scale = METRES_PER_PIXEL / 0.9590
    half_w, half_h = SIZE[0] * scale / 2, SIZE[1] * scale / 2

    def oapif(collection: str, style: dict) -> dict:
        return {"provider": "OAPIF", "name": collection, "style": style,
                "uri": oapif_uri(base, collection)}

    layers = [  # first on top
        oapif("tourism", {"colour": "#7b3294", "size": 1.6}),
        oapif("construction", {"colour": "#e31a1c"}),
        oapif("parcels", {"field": "land_use", "stroke": "#ffffff", "stroke_width": 0.05,
                          "categories": {code: c[2] for code, c in LAND_USE.items()}}),
        {"provider": "wms", "name": "wards", "uri": wms_uri(base, ["wards"], "EPSG:3857")},
    ]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    (result,) = run_qgis([{"op": "render", "layers": layers, "crs": "EPSG:3857",
                           "extent": [x - half_w, y - half_h, x + half_w, y + half_h],
                           "size": list(SIZE), "out": str(a.out.resolve()),
                           "background": "#f4f1ea"}])
    if result.get("error") or result.get("errors"):
        raise SystemExit(f"QGIS could not draw the map: {result}")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
