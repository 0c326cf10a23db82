"""Import and export of vector layers (the ``huegis import`` / ``huegis export`` commands).

The work is done in :mod:`gis.io.importer` (with the modules it drives: read, values,
context, validate, copy) and :mod:`gis.io.exporter`; this module is the public entry point.
"""

from gis.io.exporter import EXPORT_FORMATS, export_layer
from gis.io.importer import ImportReport, import_file

__all__ = ["EXPORT_FORMATS", "ImportReport", "export_layer", "import_file"]
