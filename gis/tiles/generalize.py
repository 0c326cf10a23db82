"""What a layer looks like at each zoom: detail, or a generalized view kept by migration 0005.

Each vector layer is drawn at its catalog zoom range (``Layer.zoom``) from its table's
stored Web Mercator geometry (``geom_3857``). Below that range a layer whose catalog entry
declares ``generalize`` does not vanish but switches to a generalized view, so it never
disappears abruptly when zooming out (today's catalog):

========== ============ ===============================================================
layer      zooms        view
========== ============ ===============================================================
parcels    11–13        ``tiles_parcel_blocks``: parcels dissolved by land use per 600 m
                        cell (fields ``land_use``, ``parcels``, ``area_m2``); detail
                        from 14, with what the map draws until 18 (``lean_until``)
incidents  6–14         clusters on a 16×16 grid per tile (``count``, dominant
                        ``category``); detail from 15, ``description`` from 17
wards      every zoom   ``tiles_wards_gen``: simplified to one tile unit at the zoom
========== ============ ===============================================================

The generalized tables are maintained by the layer tables' triggers, in the transaction of
the write (``huegis tiles refresh`` rebuilds them all).
"""

from __future__ import annotations

from typing import Literal

from layers import Layer

Mode = Literal["detail", "blocks", "clusters", "wards", "none"]


# Zoom buckets of tiles_wards_gen (each simplified to one tile unit at that zoom).
WARD_BUCKETS = (6, 8, 10, 12, 14)


def zoom_range(layer: Layer) -> tuple[int, int]:
    """Zooms at which the layer has tiles (generalized ones included).

    >>> from layers import VECTOR_LAYERS
    >>> zoom_range(VECTOR_LAYERS["parcels"]), zoom_range(VECTOR_LAYERS["tourism"])
    ((11, 22), (10, 22))
    """
    g = layer.generalize
    lo = min(layer.zoom[0], g.minzoom) if g else layer.zoom[0]
    return lo, layer.zoom[1]


def mode_at(layer: Layer, z: int) -> Mode:
    """How ``layer`` is drawn at zoom ``z``.

    >>> from layers import VECTOR_LAYERS
    >>> [mode_at(VECTOR_LAYERS["parcels"], z) for z in (10, 12, 14)]
    ['none', 'blocks', 'detail']
    >>> [mode_at(VECTOR_LAYERS["incidents"], z) for z in (5, 12, 15)]
    ['none', 'clusters', 'detail']
    """
    lo, hi = zoom_range(layer)
    if not lo <= z <= hi:
        return "none"
    g = layer.generalize
    if g is None:
        return "detail"
    if g.mode == "wards":
        return "wards"
    return "detail" if z >= g.until else g.mode


def ward_bucket(z: int) -> int:
    """The simplification bucket used at zoom ``z``.

    >>> [ward_bucket(z) for z in (6, 7, 9, 13, 18)]
    [6, 6, 8, 12, 14]
    """
    return max(b for b in WARD_BUCKETS if b <= max(z, WARD_BUCKETS[0]))


def fields_at(layer: Layer, fields: list[str], z: int) -> list[str]:
    """``fields`` without those left out at zoom ``z``: the long ones (``late_fields``) and,
    below ``lean_until``, all but what the style draws with.

    >>> from layers import VECTOR_LAYERS
    >>> parcels = VECTOR_LAYERS["parcels"]
    >>> fields_at(parcels, ["parcel_no", "land_use", "area_m2"], 14)
    ['land_use']
    >>> fields_at(parcels, ["parcel_no", "land_use", "area_m2"], 17)  # labels from 17
    ['parcel_no', 'land_use']
    >>> fields_at(parcels, ["parcel_no", "land_use", "area_m2"], 18)
    ['parcel_no', 'land_use', 'area_m2']
    """
    g = layer.generalize
    if g is None:
        return fields
    late = dict(g.late_fields)
    kept = [f for f in fields if z >= late.get(f, 0)]
    if g.lean_until is None or z >= g.lean_until:
        return kept
    s = layer.style
    drawn = {s.classify}
    if s.label and (s.label_minzoom is None or z >= s.label_minzoom):
        drawn.add(s.label)
    return [f for f in kept if f in drawn]
