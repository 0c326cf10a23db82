"""Import and export of vector layers (the ``huegis import`` / ``huegis export`` commands).

The work is done in :mod:`gis.importer` (with the ``gis.import_*`` modules it drives) and
:mod:`gis.exporter`; this module is the public entry point.
"""

from gis.exporter import EXPORT_FORMATS, export_layer
from gis.importer import ImportReport, import_file

__all__ = ["EXPORT_FORMATS", "ImportReport", "export_layer", "import_file"]
