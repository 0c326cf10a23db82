"""The Huế demo: real wards and points of interest plus generated parcels, construction,
incidents and rasters (every generated row marked ``source = 'synthetic'``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from gis import gazetteer
from gis.bulk import ProgressFn
from gis.realdata import load_real
from gis.settings import Settings
from layers import VECTOR_LAYERS

# track(description, total) -> a function advancing that task by n
Tracker = Callable[[str, int], ProgressFn]


@dataclass(frozen=True)
class DemoSize:
    parcels: int = 50_000
    construction: int = 5_000
    incidents: int = 20_000
    seed: int = 46


def _no_tracking(description: str, total: int) -> ProgressFn:
    return lambda n: None


def demo_loaded(conn: psycopg.Connection) -> bool:
    """Whether the demo data is already in the database."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM admin_units WHERE level = 'ward') "
        "AND EXISTS (SELECT 1 FROM land_parcels WHERE source = 'synthetic') "
        "AND EXISTS (SELECT 1 FROM raster_datasets)").fetchone()
    return bool(row and row[0])


def load_demo(conn: psycopg.Connection, settings: Settings, size: DemoSize = DemoSize(),
              track: Tracker = _no_tracking) -> dict[str, int]:
    """Replace the demo data in one transaction; return row counts per layer."""
    from gis import raster, synth

    counts: dict[str, int] = {}
    with conn.transaction():
        synth.delete_synthetic(conn)
        counts.update(load_real(conn, settings.data_dir))
        counts["parcels"] = synth.generate_parcels(
            conn, size.parcels, size.seed, track("parcels", size.parcels))
        counts["construction"] = synth.generate_construction(
            conn, size.construction, size.seed, track("construction", size.construction))
        counts["incidents"] = synth.generate_incidents(
            conn, size.incidents, size.seed, track("incidents", size.incidents))
        advance = track("rasters", 2)
        paths = raster.write_rasters(conn, settings.raster_dir, size.seed)
        advance(len(paths))
        counts["rasters"] = len(paths)
    # Fresh planner statistics (and the estimated extents the API reads).
    tables = {layer.table for layer in VECTOR_LAYERS.values()} - {"wards"}
    for table in sorted(tables | {"admin_units", "incident_events"}):
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    conn.execute(gazetteer.REFRESH_SQL)  # street names of the new parcels, for place search
    conn.commit()
    return counts
