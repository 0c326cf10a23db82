"""VN-2000 coordinate systems in spatial_ref_sys (Debian's PostGIS 3.3 lacks the TM-3 zones).

Definitions come from pyproj's EPSG database at migration time: VN-2000 geographic (4756),
UTM 48N/49N (3405/3406) and every TM-3 zone, including EPSG:9214 (TM-3 107-00, Huế's local
system). The proj4 text carries the towgs84 shift to WGS 84 so that PostGIS transforms match
pyproj to well under a metre.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# All VN-2000 CRSs the platform accepts.
VN2000_SRIDS = (4756, 3405, 3406, 5896, 5897, 5898, 5899, *range(9205, 9219))
# EPSG:6960 "VN-2000 to WGS 84 (2)", position-vector Helmert (towgs84 order).
VN2000_TOWGS84 = ("-191.90441429,-39.30318279,-111.45032835,"
                  "-0.00928836,0.01975479,-0.00427372,0.252906278")


def _definition(srid: int) -> tuple[str, str]:
    import warnings

    from pyproj import CRS

    crs = CRS.from_epsg(srid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proj4 = crs.to_proj4()
    proj4 = proj4.replace(" +type=crs", "")
    proj4 = proj4.replace("+no_defs", f"+towgs84={VN2000_TOWGS84} +no_defs")
    return crs.to_wkt("WKT1_GDAL"), proj4


def upgrade() -> None:
    conn = op.get_bind()
    # Remember which rows this migration added, so the downgrade removes only those.
    op.execute("CREATE TABLE huegis_added_srids (srid integer PRIMARY KEY)")
    for srid in VN2000_SRIDS:
        srtext, proj4 = _definition(srid)
        conn.execute(
            sa.text("WITH added AS (INSERT INTO spatial_ref_sys "
                    "(srid, auth_name, auth_srid, srtext, proj4text) "
                    "VALUES (:srid, 'EPSG', :srid, :srtext, :proj4) "
                    "ON CONFLICT (srid) DO NOTHING RETURNING srid) "
                    "INSERT INTO huegis_added_srids SELECT srid FROM added"),
            {"srid": srid, "srtext": srtext, "proj4": proj4})


def downgrade() -> None:
    op.execute("DELETE FROM spatial_ref_sys WHERE srid IN (SELECT srid FROM huegis_added_srids)")
    op.execute("DROP TABLE IF EXISTS huegis_added_srids")
