"""The one place that imports Mapnik.

``import mapnik`` (the PyPI wheel) points ``PROJ_LIB``, ``GDAL_DATA`` and ``ICU_DATA`` at its own
share directories; pyproj and rasterio then read Mapnik's ``proj.db`` and fail ("Cannot find
proj.db" or a version mismatch). :func:`mapnik_module` imports it once with those variables
saved and restored. The renderer never asks Mapnik to reproject (PostGIS transforms every
geometry to the map's CRS and the layer and map CRS are the same string), so Mapnik never
needs its PROJ database either.
"""

from __future__ import annotations

import os
import threading
from types import ModuleType

MAPNIK_ENV_VARS = ("PROJ_LIB", "PROJ_DATA", "GDAL_DATA")
# Mapnik's bundled ICU needs its data for line breaking of labels; nothing else here uses ICU,
# so ICU_DATA is left pointing at the wheel's copy (unless it was set before).
ICU_DATA = "ICU_DATA"

_lock = threading.Lock()
_module: ModuleType | None = None


def mapnik_module() -> ModuleType:
    """The ``mapnik`` module, imported once, with the process environment left as it was.

    Examples
    --------
    >>> import os
    >>> before = {k: os.environ.get(k) for k in MAPNIK_ENV_VARS}
    >>> mapnik = mapnik_module()
    >>> {k: os.environ.get(k) for k in MAPNIK_ENV_VARS} == before
    True
    >>> 'postgis' in mapnik.DatasourceCache.plugin_names()
    True
    """
    global _module
    if _module is not None:
        return _module
    with _lock:
        if _module is None:
            saved = {k: os.environ.get(k) for k in MAPNIK_ENV_VARS}
            try:
                import mapnik
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
            _module = mapnik
    return _module
