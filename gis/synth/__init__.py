"""Deterministic synthetic data for the layers that have no open source.

Land parcels, construction permits and violations, and citizen incident reports (with their
event history) are generated from a seed (``numpy.random.Generator``) and written with
PostgreSQL COPY (:func:`gis.bulk.copy_rows`), every row marked ``source = 'synthetic'``. Wards
must be loaded first: ward polygons are read from ``admin_units``.

* **Parcels** tile the urban wards (*phường*) with a street grid in EPSG:9214: 400 m superblocks
  between arterial roads, subdivided into blocks by local streets and into parcels (narrow deep
  tube-house lots in the centre, larger garden, institutional and farm lots outward). Cells fill
  outward from central Huế (107.585, 16.463), so any ``n`` works; once the urban wards are full
  the communes (*xã*) get rural parcels. Water (Hương and Bồ rivers, the lagoon) and mountains
  (the :class:`gis.raster.Terrain` model) stay empty, and every parcel lies inside its ward.
* **Construction** footprints are buildings inset into existing parcels (or into generated lots
  when there are too few parcels).
* **Incidents** are points inside wards weighted by population, 2019-01-01 to 2026-11-25, with a
  seasonal category mix, working-day SLAs and a consistent ``incident_events`` history.

Personal fields (owner and reporter names, phones, emails, inspector notes) are synthetic;
keeping them private is the job of the catalog (``Field.public``), not of this module.

The package's modules, each of one concern:

* :mod:`gis.synth.names`: Vietnamese people, streets and places;
* :mod:`gis.synth.context`: wards, the site grid, the street-grid frame, shared helpers and
  :func:`delete_synthetic`;
* :mod:`gis.synth.dates`: the period of the data, public holidays and working days;
* :mod:`gis.synth.layout`: the street grid's cells, blocks and parcel polygons;
* :mod:`gis.synth.parcels`: parcel numbers and attributes, :func:`generate_parcels`;
* :mod:`gis.synth.construction`: :func:`generate_construction`;
* :mod:`gis.synth.incident_plan`: what, when, where and the history of each incident;
* :mod:`gis.synth.incidents`: :func:`generate_incidents`.
"""

from __future__ import annotations

from gis.bulk import ProgressFn
from gis.synth.construction import generate_construction
from gis.synth.context import SOURCE as SOURCE
from gis.synth.context import _context as _context
from gis.synth.context import delete_synthetic
from gis.synth.dates import holidays as holidays
from gis.synth.incidents import generate_incidents
from gis.synth.layout import _cells as _cells
from gis.synth.parcels import generate_parcels

__all__ = ["ProgressFn", "delete_synthetic", "generate_construction", "generate_incidents",
           "generate_parcels"]
