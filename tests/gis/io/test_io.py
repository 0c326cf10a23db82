"""Import and export of vector layers against a real PostGIS, with files written by the tests.

Every test works in the rolled-back ``conn`` transaction; the rows it imports never persist.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyogrio
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from gis.errors import ImportRejected, InvalidParameter, LayerNotFound, UnknownCRS
from gis.io import export_layer, import_file
from gis.io import read as import_read
from gis.io import validate as import_validate
from layers import VECTOR_LAYERS
from tests.common import CENTRAL_HUE_BBOX, DAI_NOI_LONLAT, HANOI_LONLAT, TRUONG_TIEN_LONLAT

PARCELS = VECTOR_LAYERS["parcels"]
TOURISM = VECTOR_LAYERS["tourism"]


# ----------------------------------------------------------------------------- helpers


def lot(i: int, lon: float = 107.5800, lat: float = 16.4700, size: float = 0.0004) -> Polygon:
    """A ~40 m square parcel, the i-th of a row going east from (lon, lat)."""
    x = lon + i * size * 1.5
    return box(x, lat, x + size, lat + size)


def parcel_rows(n: int, sheet: str = "IO-1", **extra: object) -> list[dict]:
    return [{"parcel_no": str(i + 1), "map_sheet_no": sheet, "land_use": "ODT", **extra}
            for i in range(n)]


def feature_collection(rows: list[dict], geoms: list, crs: int | None = None) -> dict:
    fc: dict = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": r,
         "geometry": shapely.geometry.mapping(g) if g is not None else None}
        for r, g in zip(rows, geoms, strict=True)]}
    if crs:
        fc["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{crs}"}}
    return fc


def write_geojson(path: Path, rows: list[dict], geoms: list, crs: int | None = None) -> Path:
    path.write_text(json.dumps(feature_collection(rows, geoms, crs), ensure_ascii=False),
                    encoding="utf-8")
    return path


def write_ogr(path: Path, rows: list[dict], geoms: list, crs: int | None = 4326,
              driver: str = "GPKG") -> Path:
    df = gpd.GeoDataFrame(pd.DataFrame(rows), geometry=list(geoms), crs=crs)
    with warnings.catch_warnings():  # laundered DBF field names, no CRS: both on purpose
        warnings.simplefilter("ignore")
        pyogrio.write_dataframe(df, path, driver=driver)
    return path


def write_zipped_shapefile(path: Path, rows: list[dict], geoms: list, crs: int | None = 4326
                           ) -> Path:
    shp = path.with_suffix(".shp")
    write_ogr(shp, rows, geoms, crs, driver="ESRI Shapefile")
    with zipfile.ZipFile(path, "w") as z:
        for part in shp.parent.glob(shp.stem + ".*"):
            if part != path:
                z.write(part, part.name)
    return path


def count(conn: psycopg.Connection, table: str) -> int:
    return conn.execute(psycopg.sql.SQL("SELECT count(*) FROM {}").format(
        psycopg.sql.Identifier(table))).fetchone()[0]


def parcels_of(conn: psycopg.Connection, sheet: str) -> list[tuple]:
    return conn.execute(
        "SELECT parcel_no, land_use, area_m2, ward_code, source, owner_name, "
        "ST_AsBinary(geom) FROM land_parcels WHERE map_sheet_no = %s "
        "ORDER BY parcel_no::int", (sheet,)).fetchall()


def rejected(conn: psycopg.Connection, table: str, *args, **kwargs) -> ImportRejected:
    """Run an import expected to fail; check that nothing was written."""
    before = count(conn, table)
    with pytest.raises(ImportRejected) as err:
        import_file(conn, *args, **kwargs)
    assert err.value.code == "ImportRejected"
    assert count(conn, table) == before
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS  # usable
    return err.value


def ward_at(conn: psycopg.Connection, geom) -> str | None:
    row = conn.execute(
        "SELECT gso_code FROM admin_units WHERE level = 'ward' "
        "AND ST_Intersects(geom, ST_PointOnSurface(ST_GeomFromWKB(%s, 4326)))",
        (shapely.to_wkb(geom),)).fetchone()
    return row[0] if row else None


# ----------------------------------------------------------------------------- formats


def test_import_geojson_parcels(conn: psycopg.Connection, tmp_path: Path) -> None:
    geoms = [lot(0), lot(1), MultiPolygon([lot(2), lot(3)])]
    rows = parcel_rows(3, "IO-GJ")
    rows[0].update(owner_name="Nguyễn Văn A", owner_type="household", address="1 Lê Lợi")
    path = write_geojson(tmp_path / "parcels.geojson", rows, geoms)
    before = count(conn, "land_parcels")
    totals: list[int] = []
    steps: list[int] = []
    report = import_file(conn, path, PARCELS, on_total=totals.append, progress=steps.append)
    assert (report.layer, report.read, report.inserted) == ("parcels", 3, 3)
    assert report.skipped == [] and report.repaired == [] and report.source_crs == 4326
    assert report.seconds > 0
    assert totals == [3] and sum(steps) == 3
    assert count(conn, "land_parcels") == before + 3
    stored = parcels_of(conn, "IO-GJ")
    to_tm3 = Transformer.from_crs(4326, 9214, always_xy=True)
    for (_, use, area, ward, source, _, wkb), g in zip(stored, geoms, strict=True):
        geom = shapely.from_wkb(wkb)
        assert geom.geom_type == "MultiPolygon"  # Polygon promoted
        assert geom.equals(g)
        assert use == "ODT" and source == "import"
        expected = shapely.transform(g, lambda c: np.column_stack(
            to_tm3.transform(c[:, 0], c[:, 1]))).area
        assert area == pytest.approx(expected, abs=0.01)  # m² in EPSG:9214
        assert ward is not None and ward == ward_at(conn, geom)
    assert stored[0][5] == "Nguyễn Văn A"


def test_import_geopackage_points(conn: psycopg.Connection, tmp_path: Path) -> None:
    rows = [{"name": "Đại Nội", "category": "heritage", "osm_id": 910_000_000_001},
            {"name": "Cầu Trường Tiền", "Category": "viewpoint", "osm_id": 910_000_000_002}]
    rows[1]["category"] = rows[1].pop("Category")
    path = write_ogr(tmp_path / "pois.gpkg", rows,
                     [Point(*DAI_NOI_LONLAT), Point(*TRUONG_TIEN_LONLAT)])
    report = import_file(conn, path, "tourism")
    assert report.inserted == 2
    got = conn.execute("SELECT name, category, osm_id, source, ward_code, ST_X(geom), ST_Y(geom) "
                       "FROM tourism_pois WHERE osm_id >= 910000000001 ORDER BY osm_id").fetchall()
    assert [g[:4] for g in got] == [("Đại Nội", "heritage", 910_000_000_001, "import"),
                                    ("Cầu Trường Tiền", "viewpoint", 910_000_000_002, "import")]
    assert got[0][4] == ward_at(conn, Point(*DAI_NOI_LONLAT)) is not None
    assert got[0][5:] == pytest.approx(DAI_NOI_LONLAT, abs=1e-12)


def test_import_zipped_shapefile(conn: psycopg.Connection, tmp_path: Path) -> None:
    rows = [{"name": "Bệnh viện Trung ương Huế", "kind": "hospital", "beds": 3000,
             "osm_id": 920_000_000_001},
            {"name": "Nhà thuốc", "kind": "pharmacy", "beds": None, "osm_id": 920_000_000_002}]
    path = write_zipped_shapefile(tmp_path / "health.zip", rows,
                                  [Point(107.5890, 16.4620), Point(107.5950, 16.4650)])
    report = import_file(conn, path, "health")
    assert report.inserted == 2
    got = conn.execute("SELECT name, kind, beds FROM health_facilities "
                       "WHERE osm_id >= 920000000001 ORDER BY osm_id").fetchall()
    assert got == [("Bệnh viện Trung ương Huế", "hospital", 3000), ("Nhà thuốc", "pharmacy", None)]


def test_import_csv_lonlat(conn: psycopg.Connection, tmp_path: Path) -> None:
    path = tmp_path / "pois.csv"
    path.write_text("Name,CATEGORY,Longitude,LAT,osm_id,opening_hours\n"
                    "Chùa Thiên Mụ,heritage,107.5448,16.4533,930000000001,\n"
                    " Chợ Đông Ba ,attraction,107.5880,16.4730,930000000002,06:00-18:00\n",
                    encoding="utf-8")
    report = import_file(conn, path, "tourism")
    assert report.inserted == 2 and report.source_crs == 4326
    got = conn.execute("SELECT name, opening_hours, ST_X(geom), ST_Y(geom) FROM tourism_pois "
                       "WHERE osm_id >= 930000000001 ORDER BY osm_id").fetchall()
    assert got[0][:2] == ("Chùa Thiên Mụ", None)
    assert got[1][:2] == ("Chợ Đông Ba", "06:00-18:00")  # stripped
    assert got[1][2:] == pytest.approx((107.5880, 16.4730), abs=1e-12)


@pytest.mark.parametrize("lon, lat", [("lng", "latitude"), ("x", "y"), ("LON", "Lat")])
def test_csv_coordinate_column_names(conn: psycopg.Connection, tmp_path: Path, lon: str,
                                     lat: str) -> None:
    path = tmp_path / "pois.csv"
    path.write_text(f"name,category,{lon},{lat}\nQuán,cafe,107.59,16.46\n", encoding="utf-8")
    assert import_file(conn, path, "tourism").inserted == 1


def test_import_csv_wkt(conn: psycopg.Connection, tmp_path: Path) -> None:
    path = tmp_path / "parcels.csv"
    pd.DataFrame({"parcel_no": ["1", "2"], "map_sheet_no": "IO-WKT", "land_use": ["CLN", "TMD"],
                  "area_m2": [None, 123.5],
                  "WKT": [lot(0).wkt, f"SRID=4326;{MultiPolygon([lot(1)]).wkt}"]}
                 ).to_csv(path, index=False)
    report = import_file(conn, path, "parcels")
    assert report.inserted == 2
    stored = parcels_of(conn, "IO-WKT")
    assert [s[1] for s in stored] == ["CLN", "TMD"]
    assert stored[0][2] > 1000 and stored[1][2] == 123.5  # computed vs given area
    assert shapely.from_wkb(stored[1][6]).equals(lot(1))


def test_import_vn2000_tm3_lands_where_pyproj_says(conn: psycopg.Connection,
                                                   tmp_path: Path) -> None:
    lon, lat = TRUONG_TIEN_LONLAT
    to_tm3 = Transformer.from_crs(4326, 9214, always_xy=True)
    x, y = to_tm3.transform(lon, lat)
    assert 560_000 < x < 570_000 and 1_810_000 < y < 1_830_000  # metres, TM-3 107-00
    path = write_ogr(tmp_path / "tm3.gpkg",
                     [{"name": "Cầu Trường Tiền", "category": "viewpoint",
                       "osm_id": 940_000_000_001}], [Point(x, y)], crs=9214)
    report = import_file(conn, path, "tourism")
    assert report.source_crs == 9214
    got = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM tourism_pois "
                       "WHERE osm_id = 940000000001").fetchone()
    assert got == pytest.approx((lon, lat), abs=1e-7)
    # The same coordinates in a CSV (no CRS in the file) with crs given.
    csv = tmp_path / "tm3.csv"
    csv.write_text(f"name,category,x,y\nCầu,viewpoint,{x!r},{y!r}\n", encoding="utf-8")
    report = import_file(conn, csv, "tourism", "EPSG:9214")
    assert report.source_crs == 9214
    got = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM tourism_pois WHERE name = 'Cầu' "
                       "AND source = 'import'").fetchone()
    assert got == pytest.approx((lon, lat), abs=1e-7)


def test_import_vn2000_utm48n_polygons(conn: psycopg.Connection, tmp_path: Path) -> None:
    to_utm = Transformer.from_crs(4326, 3405, always_xy=True)
    g = lot(0, *DAI_NOI_LONLAT)
    utm = shapely.transform(g, lambda c: np.column_stack(to_utm.transform(c[:, 0], c[:, 1])))
    path = write_zipped_shapefile(tmp_path / "utm.zip", parcel_rows(1, "IO-UTM"), [utm],
                                  crs=3405)
    report = import_file(conn, path, "parcels")
    assert report.source_crs == 3405 and report.inserted == 1
    stored = shapely.from_wkb(parcels_of(conn, "IO-UTM")[0][6])
    # (Shapefiles store exterior rings clockwise: compare normalised coordinates.)
    assert np.allclose(shapely.get_coordinates(shapely.normalize(stored)),
                       shapely.get_coordinates(shapely.normalize(MultiPolygon([g]))), atol=1e-7)


def test_crs_argument_overrides_the_file(conn: psycopg.Connection, tmp_path: Path) -> None:
    to_tm3 = Transformer.from_crs(4326, 9214, always_xy=True)
    x, y = to_tm3.transform(*DAI_NOI_LONLAT)
    # Wrongly labelled as EPSG:3405 in the file; the user knows better.
    path = write_ogr(tmp_path / "labelled.gpkg", [{"name": "A", "category": "other"}],
                     [Point(x, y)], crs=3405)
    report = import_file(conn, path, "tourism", crs="EPSG:9214")
    assert report.source_crs == 9214
    got = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM tourism_pois WHERE name = 'A' "
                       "AND source = 'import'").fetchone()
    assert got == pytest.approx(DAI_NOI_LONLAT, abs=1e-7)


def test_no_crs_needs_crs_argument(conn: psycopg.Connection, tmp_path: Path) -> None:
    to_tm3 = Transformer.from_crs(4326, 9214, always_xy=True)
    g = shapely.transform(lot(0), lambda c: np.column_stack(to_tm3.transform(c[:, 0], c[:, 1])))
    path = write_zipped_shapefile(tmp_path / "noprj.zip", parcel_rows(1, "IO-NOPRJ"), [g],
                                  crs=None)
    err = rejected(conn, "land_parcels", path, PARCELS)
    assert "CRS" in str(err) and "--crs" in str(err)
    assert import_file(conn, path, PARCELS, crs=9214).inserted == 1


# ----------------------------------------------------------------------------- geometry


def test_invalid_polygon_is_repaired(conn: psycopg.Connection, tmp_path: Path) -> None:
    x, y = 107.5800, 16.4700
    bowtie = Polygon([(x, y), (x + 0.001, y + 0.001), (x + 0.001, y), (x, y + 0.001), (x, y)])
    assert not bowtie.is_valid
    path = write_geojson(tmp_path / "bowtie.geojson", parcel_rows(2, "IO-BOW"),
                         [lot(5), bowtie])
    report = import_file(conn, path, PARCELS)
    assert report.inserted == 2 and report.repaired == [2]
    stored = shapely.from_wkb(parcels_of(conn, "IO-BOW")[1][6])
    assert stored.is_valid and stored.geom_type == "MultiPolygon"
    assert len(stored.geoms) == 2
    assert stored.area == pytest.approx(0.5e-6, rel=1e-6)  # the two triangles


def test_unrepairable_and_wrong_type_rows_are_named(conn: psycopg.Connection,
                                                    tmp_path: Path) -> None:
    x, y = 107.5800, 16.4700
    flat = Polygon([(x, y), (x + 0.001, y), (x + 0.002, y), (x, y)])  # collapses to a line
    line = LineString([(x, y), (x + 0.001, y + 0.001)])
    path = write_geojson(tmp_path / "bad.geojson", parcel_rows(4, "IO-BAD"),
                         [lot(0), flat, line, None])
    err = rejected(conn, "land_parcels", path, PARCELS)
    text = str(err)
    assert "row 2: invalid geometry that cannot be repaired" in text
    assert "row 3: geometry is a LineString; layer 'parcels' takes MultiPolygon" in text
    assert "row 4: missing geometry" in text
    assert "row 1" not in text
    assert [r for r, _ in err.details["errors"]] == [2, 3, 4]


def test_polygon_into_point_layer_rejected(conn: psycopg.Connection, tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "poly.geojson", [{"name": "X", "category": "other"}],
                         [lot(0)])
    err = rejected(conn, "tourism_pois", path, TOURISM)
    assert "row 1: geometry is a Polygon; layer 'tourism' takes Point geometries" in str(err)


def test_outside_hue_rejected(conn: psycopg.Connection, tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "hanoi.geojson",
                         [{"name": "Hồ Gươm", "category": "attraction"},
                          {"name": "Văn Miếu", "category": "heritage"},
                          {"name": "Đại Nội", "category": "heritage"}],
                         [Point(*HANOI_LONLAT), Point(105.8355, 21.0294), Point(*DAI_NOI_LONLAT)])
    err = rejected(conn, "tourism_pois", path, TOURISM)
    assert "2 of 3 rows rejected" in str(err)
    assert "row 1: outside Huế" in str(err) and "row 2: outside Huế" in str(err)
    assert "row 3" not in str(err)


def test_file_without_geometry(conn: psycopg.Connection, tmp_path: Path) -> None:
    csv = tmp_path / "nogeom.csv"
    csv.write_text("name,category\nA,other\n", encoding="utf-8")
    err = rejected(conn, "tourism_pois", csv, TOURISM)
    assert "no geometry" in str(err) and "lon" in str(err) and "wkt" in str(err)

    table = tmp_path / "table.gpkg"
    pyogrio.write_dataframe(pd.DataFrame({"name": ["A"], "category": ["other"]}), table,
                            layer="pois")
    assert "no geometry column" in str(rejected(conn, "tourism_pois", table, TOURISM))

    nulls = write_geojson(tmp_path / "nulls.geojson", [{"name": "A", "category": "other"}],
                          [None])
    assert "no geometries" in str(rejected(conn, "tourism_pois", nulls, TOURISM))


# ----------------------------------------------------------------------------- attributes


def test_unknown_columns_listed(conn: psycopg.Connection, tmp_path: Path) -> None:
    rows = parcel_rows(1, "IO-COL", colour="red", Tax=12, id=5, fid=7)
    path = write_geojson(tmp_path / "cols.geojson", rows, [lot(0)])
    err = rejected(conn, "land_parcels", path, PARCELS)
    text = str(err)
    assert "colour, Tax" in text and "parcel_no" in text and "land_use" in text
    assert err.details["unknown"] == ["colour", "Tax"]  # id and fid are ignored


def test_missing_required_field(conn: psycopg.Connection, tmp_path: Path) -> None:
    rows = [{"parcel_no": "1", "map_sheet_no": "IO-REQ"}]
    path = write_geojson(tmp_path / "req.geojson", rows, [lot(0)])
    assert "land_use" in str(rejected(conn, "land_parcels", path, PARCELS))
    rows = parcel_rows(2, "IO-REQ")
    rows[1]["land_use"] = None
    path = write_geojson(tmp_path / "req2.geojson", rows, [lot(0), lot(1)])
    assert "row 2: missing value for required field 'land_use'" in str(
        rejected(conn, "land_parcels", path, PARCELS))


def test_bad_choice_value(conn: psycopg.Connection, tmp_path: Path) -> None:
    rows = parcel_rows(3, "IO-CHOICE")
    rows[1]["land_use"] = "XYZ"
    rows[2]["land_use"] = "odt"  # case-insensitive, stored as ODT
    path = write_geojson(tmp_path / "choice.geojson", rows, [lot(0), lot(1), lot(2)])
    err = rejected(conn, "land_parcels", path, PARCELS)
    assert "row 2: land_use: 'XYZ' is not one of ODT, ONT" in str(err)
    assert [r for r, _ in err.details["errors"]] == [2]


def test_typed_values(conn: psycopg.Connection, tmp_path: Path) -> None:
    path = tmp_path / "health.csv"
    path.write_text("name,kind,beds,osm_id,lon,lat\n"
                    "A,clinic,12,950000000001,107.59,16.46\n"
                    "B,clinic,twelve,950000000002,107.59,16.46\n"
                    "C,clinic,1.5,950000000003,107.59,16.46\n"
                    "D,clinic,99999999999,950000000004,107.59,16.46\n"
                    "E,clinic,,abc,107.59,16.46\n", encoding="utf-8")
    err = rejected(conn, "health_facilities", path, "health")
    text = str(err)
    assert "row 2: beds: 'twelve' is not an integer" in text
    assert "row 3: beds: '1.5' is not an integer" in text
    assert "row 4: beds: '99999999999' is not an integer (or out of the integer range)" in text
    assert "row 5: osm_id: 'abc' is not an integer" in text
    assert "row 1" not in text


def test_dates_and_datetimes(conn: psycopg.Connection, tmp_path: Path) -> None:
    rows = [{"record_no": "IO-C1", "kind": "permit", "status": "approved",
             "issued_on": "2025-07-01", "expires_on": "31/12/2026", "floors": "3"},
            {"record_no": "IO-C2", "kind": "violation", "status": "detected",
             "issued_on": "not a date"}]
    path = write_geojson(tmp_path / "c.geojson", rows, [lot(0), lot(1)])
    err = rejected(conn, "construction", path, "construction")
    assert "row 2: issued_on: 'not a date' is not a date" in str(err)
    report = import_file(conn, path, "construction", skip_invalid=True)
    assert report.inserted == 1 and [r for r, _ in report.skipped] == [2]
    got = conn.execute("SELECT issued_on::text, expires_on::text, floors FROM construction "
                       "WHERE record_no = 'IO-C1'").fetchone()
    assert got == ("2025-07-01", "2026-12-31", 3)

    inc = tmp_path / "incidents.csv"
    inc.write_text("ref,category,created_at,lon,lat\n"
                   "IO-I1,roads,2025-08-01T08:30:00,107.59,16.46\n"
                   "IO-I2,waste,2025-08-01T08:30:00Z,107.59,16.46\n", encoding="utf-8")
    assert import_file(conn, inc, "incidents").inserted == 2
    got = conn.execute("SELECT ref, created_at AT TIME ZONE 'UTC', status, source FROM incidents "
                       "WHERE ref LIKE 'IO-I%' ORDER BY ref").fetchall()
    assert str(got[0][1]) == "2025-08-01 01:30:00"  # naive = Huế time (UTC+7)
    assert str(got[1][1]) == "2025-08-01 08:30:00"
    assert got[0][2:] == ("received", "import")  # database default; source defaults to import


def test_special_characters_survive_copy(conn: psycopg.Connection, tmp_path: Path) -> None:
    address = "Kiệt 5\tNguyễn Trãi\nphường\\Phú Hậu \\N\r"
    rows = parcel_rows(2, "IO-ESC", address=address)
    rows[1]["address"] = "\\N"
    path = write_geojson(tmp_path / "esc.geojson", rows, [lot(0), lot(1)])
    assert import_file(conn, path, PARCELS).inserted == 2
    got = conn.execute("SELECT address FROM land_parcels WHERE map_sheet_no = 'IO-ESC' "
                       "ORDER BY parcel_no").fetchall()
    assert got == [(address.strip(),), ("\\N",)]


def test_layer_picked_from_a_multi_layer_geopackage(conn: psycopg.Connection,
                                                    tmp_path: Path) -> None:
    path = tmp_path / "multi.gpkg"
    write_ogr(path, [{"name": "A", "category": "other"}], [Point(*DAI_NOI_LONLAT)])
    other = gpd.GeoDataFrame({"name": ["B"], "category": ["cafe"]},
                             geometry=[Point(*TRUONG_TIEN_LONLAT)], crs=4326)
    pyogrio.write_dataframe(other, path, layer="tourism", append=True)
    report = import_file(conn, path, TOURISM)
    assert report.inserted == 1
    assert conn.execute("SELECT count(*) FROM tourism_pois WHERE name = 'B' "
                        "AND source = 'import'").fetchone()[0] == 1
    assert "has 2 layers" in str(rejected(conn, "land_parcels", path, PARCELS))


def test_csv_with_wkt_and_coordinates(conn: psycopg.Connection, tmp_path: Path) -> None:
    path = tmp_path / "both.csv"
    path.write_text(f"name,category,lon,lat,wkt\nA,other,0,0,\"{Point(*DAI_NOI_LONLAT).wkt}\"\n",
                    encoding="utf-8")
    assert import_file(conn, path, TOURISM).inserted == 1  # the WKT column wins
    bad = tmp_path / "bad.csv"
    bad.write_text("name,category,wkt\nA,other,POINT (1 2\nB,other,\n", encoding="utf-8")
    text = str(rejected(conn, "tourism_pois", bad, TOURISM))
    assert "row 1: invalid WKT" in text and "row 2: missing geometry" in text


# ----------------------------------------------------------------------------- keys


def test_duplicate_keys_within_file(conn: psycopg.Connection, tmp_path: Path) -> None:
    rows = parcel_rows(4, "IO-DUP")
    rows[2]["parcel_no"] = "1"
    path = write_geojson(tmp_path / "dup.geojson", rows, [lot(i) for i in range(4)])
    err = rejected(conn, "land_parcels", path, PARCELS)
    assert "row 3: duplicate key (" in str(err) and "parcel_no='1') of row 1" in str(err)
    report = import_file(conn, path, PARCELS, skip_invalid=True)
    assert report.inserted == 3 and [r for r, _ in report.skipped] == [3]


def test_duplicate_keys_across_chunks(conn: psycopg.Connection, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(import_read, "CHUNK_ROWS", 3)  # exercise the streamed path
    rows = parcel_rows(10, "IO-CHUNK")
    rows[8]["parcel_no"] = "2"
    path = write_ogr(tmp_path / "chunks.gpkg", rows, [lot(i) for i in range(10)])
    err = rejected(conn, "land_parcels", path, PARCELS)
    assert [r for r, _ in err.details["errors"]] == [9]
    assert "of row 2" in str(err)
    steps: list[int] = []
    report = import_file(conn, path, PARCELS, skip_invalid=True, progress=steps.append)
    assert report.inserted == 9 and sum(steps) == 10
    assert len(parcels_of(conn, "IO-CHUNK")) == 9


def test_keys_clashing_with_database(conn: psycopg.Connection, tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "first.geojson", parcel_rows(2, "IO-DB"), [lot(0), lot(1)])
    assert import_file(conn, path, PARCELS).inserted == 2
    again = write_geojson(tmp_path / "again.geojson", parcel_rows(3, "IO-DB"),
                          [lot(0), lot(1), lot(2)])
    err = rejected(conn, "land_parcels", again, PARCELS)
    assert "row 1: key (ward_code=" in str(err)
    assert "map_sheet_no='IO-DB', parcel_no='2') already exists in layer 'parcels'" in str(err)
    osm_id = conn.execute("SELECT osm_id FROM tourism_pois WHERE osm_id IS NOT NULL "
                          "LIMIT 1").fetchone()[0]
    pois = write_geojson(tmp_path / "pois.geojson",
                         [{"name": "Copy", "category": "other", "osm_id": osm_id}],
                         [Point(*DAI_NOI_LONLAT)])
    assert f"key (osm_id={osm_id}) already exists" in str(
        rejected(conn, "tourism_pois", pois, TOURISM))
    report = import_file(conn, again, PARCELS, skip_invalid=True)
    assert report.inserted == 1 and [r for r, _ in report.skipped] == [1, 2]


def test_skip_invalid(conn: psycopg.Connection, tmp_path: Path) -> None:
    rows = parcel_rows(5, "IO-SKIP")
    rows[1]["land_use"] = "BAD"
    rows[4]["parcel_no"] = "1"
    hanoi = box(HANOI_LONLAT[0], HANOI_LONLAT[1], HANOI_LONLAT[0] + 0.001,
                HANOI_LONLAT[1] + 0.001)
    path = write_geojson(tmp_path / "mixed.geojson", rows,
                         [lot(0), lot(1), hanoi, lot(3), lot(4)])
    before = count(conn, "land_parcels")
    report = import_file(conn, path, PARCELS, skip_invalid=True)
    assert report.read == 5 and report.inserted == 2
    assert [r for r, _ in report.skipped] == [2, 3, 5]
    reasons = dict(report.skipped)
    assert "BAD" in reasons[2] and "outside Huế" in reasons[3] and "of row 1" in reasons[5]
    assert count(conn, "land_parcels") == before + 2
    assert [p[0] for p in parcels_of(conn, "IO-SKIP")] == ["1", "4"]


def test_failed_import_keeps_earlier_work(conn: psycopg.Connection, tmp_path: Path) -> None:
    good = write_geojson(tmp_path / "good.geojson", parcel_rows(1, "IO-SP"), [lot(0)])
    import_file(conn, good, PARCELS)
    bad = write_geojson(tmp_path / "bad.geojson", parcel_rows(1, "IO-SP2", land_use="?"),
                        [lot(1)])
    rejected(conn, "land_parcels", bad, PARCELS)
    assert len(parcels_of(conn, "IO-SP")) == 1  # only the savepoint was rolled back


def test_failure_mid_stream_writes_nothing(conn: psycopg.Connection, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(import_read, "CHUNK_ROWS", 2)
    path = write_ogr(tmp_path / "six.gpkg",
                     [{"name": f"P{i}", "category": "other"} for i in range(6)],
                     [Point(107.59 + i * 1e-4, 16.46) for i in range(6)])
    process = import_validate.Validator.process
    calls: list[int] = []

    def failing(self, raw):  # the second chunk cannot be read
        calls.append(raw.offset)
        if len(calls) == 2:
            raise ImportRejected("cannot read six.gpkg: truncated")
        return process(self, raw)

    monkeypatch.setattr(import_validate.Validator, "process", failing)
    assert "truncated" in str(rejected(conn, "tourism_pois", path, TOURISM))
    assert calls[:2] == [0, 2]


def test_database_refusal_names_the_row(conn: psycopg.Connection, tmp_path: Path) -> None:
    # beds >= 0 is a CHECK constraint of the table, not a catalog rule.
    path = tmp_path / "beds.csv"
    path.write_text("name,kind,beds,lon,lat\nA,clinic,1,107.59,16.46\nB,clinic,-3,107.59,16.46\n",
                    encoding="utf-8")
    err = rejected(conn, "health_facilities", path, "health")
    assert "row 2" in str(err) and "beds" in str(err)


# ----------------------------------------------------------------------------- refusals


def test_unknown_and_non_importable_layers(conn: psycopg.Connection, tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "w.geojson", [{"name": "X"}], [lot(0)])
    with pytest.raises(LayerNotFound) as err:
        import_file(conn, path, "buildings")
    assert "buildings" in str(err.value) and "parcels" in str(err.value)
    assert "cannot be imported" in str(rejected(conn, "admin_units", path, "wards"))


def test_unknown_crs(conn: psycopg.Connection, tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "p.geojson", parcel_rows(1, "IO-CRS"), [lot(0)])
    before = count(conn, "land_parcels")
    for bad in ("EPSG:999999", "VN2000"):
        with pytest.raises(UnknownCRS) as err:
            import_file(conn, path, PARCELS, crs=bad)
        assert "EPSG:9214" in str(err.value)
    assert count(conn, "land_parcels") == before


@pytest.mark.parametrize("name, content, problem", [
    ("broken.geojson", b"\x00\x01\x02garbage{{{ not json", "cannot read broken.geojson"),
    ("broken.gpkg", b"SQLite format 3\x00" + b"\xff" * 200, "cannot read broken.gpkg"),
    ("broken.zip", b"PK\x03\x04 truncated", "cannot read broken.zip"),
    ("empty.geojson", b"", "empty"),
    ("empty.csv", b"", "empty"),
    ("header.csv", b"name,category,lon,lat\n", "no features"),
    ("nofeatures.geojson", b'{"type": "FeatureCollection", "features": []}', "no features"),
    ("parcels.txt", b"hello", "unsupported file type '.txt'"),
    ("latin1.csv", "name,category,lon,lat\nHu\xe9,other,107.59,16.46\n".encode("latin-1"),
     "UTF-8"),
])
def test_unreadable_files(conn: psycopg.Connection, tmp_path: Path, name: str, content: bytes,
                          problem: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert problem in str(rejected(conn, "tourism_pois", path, TOURISM))


def test_missing_file(conn: psycopg.Connection, tmp_path: Path) -> None:
    assert "not found" in str(rejected(conn, "tourism_pois", tmp_path / "nope.gpkg", TOURISM))


# ----------------------------------------------------------------------------- export


@pytest.fixture()
def imported(conn: psycopg.Connection, tmp_path: Path) -> list[Polygon]:
    """Three parcels with private owner names, imported in the test transaction."""
    geoms = [lot(i, 107.5900, 16.4650) for i in range(3)]
    rows = parcel_rows(3, "IO-EXP", owner_name="Trần Thị Bí Mật", zoning="R1")
    rows[1]["area_m2"] = 77.25
    import_file(conn, write_geojson(tmp_path / "in.geojson", rows, geoms), PARCELS)
    return geoms


@pytest.mark.parametrize("fmt", ["gpkg", "geojson", "csv"])
def test_export_round_trip(conn: psycopg.Connection, tmp_path: Path, imported: list,
                           fmt: str) -> None:
    out = tmp_path / f"parcels.{fmt}"
    n = export_layer(conn, PARCELS, out, fmt)  # type: ignore[arg-type]
    assert n == count(conn, "land_parcels") and out.exists()
    before = parcels_of(conn, "IO-EXP")
    conn.execute("DELETE FROM land_parcels")
    report = import_file(conn, out, PARCELS)
    assert report.inserted == n == count(conn, "land_parcels")
    after = parcels_of(conn, "IO-EXP")
    # Everything public survives the round trip; the private owner name did not leave.
    assert [r[:5] for r in after] == [r[:5] for r in before]
    assert all(r[5] is None for r in after) and all(r[5] for r in before)
    for a, b in zip(after, before, strict=True):
        assert shapely.equals_exact(shapely.from_wkb(a[6]), shapely.from_wkb(b[6]), 1e-12)


@pytest.mark.parametrize("fmt", ["gpkg", "geojson", "csv"])
def test_export_leaves_private_fields_out(conn: psycopg.Connection, tmp_path: Path,
                                          imported: list, fmt: str) -> None:
    private = {f.name for layer in VECTOR_LAYERS.values() for f in layer.private_fields}
    assert {"owner_name", "inspector_notes", "reporter_name", "reporter_phone",
            "reporter_email"} <= private
    for layer in VECTOR_LAYERS.values():
        out = tmp_path / f"{layer.id}.{fmt}"
        n = export_layer(conn, layer, out, fmt)  # type: ignore[arg-type]
        columns = (set(pd.read_csv(out, nrows=0).columns) if fmt == "csv"
                   else set(pyogrio.read_info(out)["fields"]))
        assert not columns & private, layer.id
        if n or fmt != "geojson":  # an empty GeoJSON has no schema
            assert {f.name for f in layer.public_fields} <= columns
        raw = out.read_bytes()
        assert "Bí Mật".encode() not in raw
    out = tmp_path / f"private.{fmt}"
    export_layer(conn, PARCELS, out, fmt, include_private=True)  # type: ignore[arg-type]
    assert "Trần Thị Bí Mật".encode() in out.read_bytes()


def test_export_bbox(conn: psycopg.Connection, tmp_path: Path) -> None:
    out = tmp_path / "central.geojson"
    n = export_layer(conn, TOURISM, out, "geojson", bbox=CENTRAL_HUE_BBOX)
    expected = conn.execute(
        "SELECT count(*) FROM tourism_pois WHERE ST_Intersects(geom, "
        "ST_MakeEnvelope(%s, %s, %s, %s, 4326))", CENTRAL_HUE_BBOX).fetchone()[0]
    total = count(conn, "tourism_pois")
    assert 0 < n == expected < total
    df = gpd.read_file(out)
    assert len(df) == n
    w, s, e, north = CENTRAL_HUE_BBOX
    assert (df.geometry.x.between(w, e) & df.geometry.y.between(s, north)).all()
    assert export_layer(conn, TOURISM, tmp_path / "none.gpkg", "gpkg",
                        bbox="108.0,15.0,108.1,15.1") == 0
    assert pyogrio.read_info(tmp_path / "none.gpkg")["features"] == 0


def test_export_crs(conn: psycopg.Connection, tmp_path: Path, imported: list) -> None:
    out = tmp_path / "tm3.gpkg"
    export_layer(conn, TOURISM, out, "gpkg", crs="EPSG:9214", bbox=CENTRAL_HUE_BBOX)
    df = gpd.read_file(out)
    assert df.crs.to_epsg() == 9214
    first = df.sort_values("id").iloc[0]
    lon, lat = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM tourism_pois WHERE id = %s",
                            (int(first["id"]),)).fetchone()
    x, y = Transformer.from_crs(4326, 9214, always_xy=True).transform(lon, lat)
    assert (first.geometry.x, first.geometry.y) == pytest.approx((x, y), abs=1e-6)
    # CSV of points in a projected CRS: x/y columns; polygons: WKT.
    export_layer(conn, TOURISM, tmp_path / "tm3.csv", "csv", crs=9214)
    assert {"x", "y"} <= set(pd.read_csv(tmp_path / "tm3.csv", nrows=0).columns)
    export_layer(conn, TOURISM, tmp_path / "ll.csv", "csv")
    assert {"lon", "lat"} <= set(pd.read_csv(tmp_path / "ll.csv", nrows=0).columns)
    export_layer(conn, PARCELS, tmp_path / "p.csv", "csv", crs=3405)
    assert "wkt" in pd.read_csv(tmp_path / "p.csv", nrows=0).columns
    # Re-importing the 9214 export lands on the same lon/lat.
    conn.execute("DELETE FROM tourism_pois")
    import_file(conn, out, TOURISM)
    back = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM tourism_pois WHERE osm_id = %s",
                        (int(first["osm_id"]),)).fetchone()
    assert back == pytest.approx((lon, lat), abs=1e-7)


def test_export_refusals(conn: psycopg.Connection, tmp_path: Path) -> None:
    with pytest.raises(LayerNotFound):
        export_layer(conn, "nope", tmp_path / "x.gpkg", "gpkg")
    with pytest.raises(InvalidParameter):
        export_layer(conn, TOURISM, tmp_path / "x.kml", "kml")  # type: ignore[arg-type]
    with pytest.raises(UnknownCRS):
        export_layer(conn, TOURISM, tmp_path / "x.gpkg", "gpkg", crs="EPSG:1")
    from gis.errors import InvalidBBox

    with pytest.raises(InvalidBBox):
        export_layer(conn, TOURISM, tmp_path / "x.gpkg", "gpkg", bbox="1,2,3")
    assert not (tmp_path / "x.gpkg").exists()


def test_export_wards(conn: psycopg.Connection, tmp_path: Path) -> None:
    assert export_layer(conn, "wards", tmp_path / "wards.gpkg", "gpkg") == 40
    df = gpd.read_file(tmp_path / "wards.gpkg")
    assert len(df) == 40 and df.geometry.geom_type.eq("MultiPolygon").all()


N_ROUND_TRIP = 40_000  # enough to reach the borders between wards


def test_generated_parcels_round_trip_through_export_and_import(
        conn: psycopg.Connection, tmp_path: Path) -> None:
    """The platform's own export re-imports in full, deriving area and ward the same way."""
    import pyogrio

    from gis.synth import generate_parcels

    # Only this test's parcels are synthetic (rolled back at the end, like everything here).
    conn.execute("DELETE FROM land_parcels WHERE source = 'synthetic'")
    before = count(conn, "land_parcels")
    generate_parcels(conn, N_ROUND_TRIP, seed=46)
    out = export_layer(conn, "parcels", tmp_path / "p.gpkg", "gpkg", crs="EPSG:9214",
                       include_private=True)
    assert out == before + N_ROUND_TRIP
    # (sheet/number, ward) pairs as a sorted list: a sheet and number may repeat in
    # another ward (the key includes the ward), so a dict would keep whichever row came last.
    original = sorted(conn.execute(
        "SELECT map_sheet_no || '/' || parcel_no, ward_code FROM land_parcels "
        "WHERE source = 'synthetic'").fetchall())
    df = pyogrio.read_dataframe(tmp_path / "p.gpkg")
    df = df[df["source"] == "synthetic"].drop(columns=["id", "area_m2", "ward_code"])
    pyogrio.write_dataframe(df, tmp_path / "derive.gpkg")
    conn.execute("DELETE FROM land_parcels WHERE source = 'synthetic'")
    report = import_file(conn, tmp_path / "derive.gpkg", "parcels")
    assert (report.read, report.inserted, report.skipped) == (N_ROUND_TRIP, N_ROUND_TRIP, [])
    again = sorted(conn.execute(
        "SELECT map_sheet_no || '/' || parcel_no, ward_code FROM land_parcels "
        "WHERE source = 'synthetic'").fetchall())
    assert again == original


def test_catalog_derived_fields_are_computed(conn: psycopg.Connection, tmp_path: Path) -> None:
    """What the catalog marks ``derive`` is computed: a footprint's area, an incident's ward."""
    g = lot(0, 107.5850, 16.4600)
    rows = [{"record_no": "GPXD-IO-1", "kind": "permit", "status": "approved"}]
    import_file(conn, write_geojson(tmp_path / "c.geojson", rows, [g]), "construction")
    area, ward = conn.execute("SELECT footprint_m2, ward_code FROM construction "
                              "WHERE record_no = 'GPXD-IO-1'").fetchone()
    to_tm3 = Transformer.from_crs(4326, 9214, always_xy=True)
    metric = shapely.transform(g, lambda c: np.column_stack(to_tm3.transform(c[:, 0], c[:, 1])))
    assert area == pytest.approx(metric.area, abs=0.01)
    assert ward == ward_at(conn, g)
    pt = shapely.Point(107.5775, 16.4690)
    rows = [{"ref": "PA-IO-1", "category": "roads"}]
    import_file(conn, write_geojson(tmp_path / "i.geojson", rows, [pt]), "incidents")
    assert conn.execute("SELECT ward_code FROM incidents WHERE ref = 'PA-IO-1'"
                        ).fetchone() == ("19753",)
