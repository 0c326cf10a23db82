"""Load the real Huế data shipped in ``data/hue``: city boundary, 40 wards, OSM points.

Wards come with their official GSO codes; tourism, health and education points come from the
OpenStreetMap export and get their ward by point-in-polygon in PostGIS.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import psycopg
import shapely
from psycopg import sql
from shapely.geometry import MultiPolygon

from gis.bulk import copy_rows, ewkb_hex
from layers.education import EDUCATION
from layers.health import HEALTH
from layers.tourism import TOURISM

POI_TABLES = (TOURISM.table, HEALTH.table, EDUCATION.table)
HUE_DIR = "hue"
CITY_FILE = "hue_city_boundary_osm.geojson"
WARDS_FILE = "hue_wards_2025_vietnam3dmap.geojson"
CODES_FILE = "hue_wards_2025_codes.json"
POI_FILE = "hue_poi_osm_all.geojson"

# OSM tag value → tourism category of the catalog.
TOURISM_KIND = {
    "attraction": "attraction", "museum": "museum", "gallery": "museum",
    "viewpoint": "viewpoint", "artwork": "artwork", "information": "information",
    "hotel": "hotel", "motel": "hotel", "apartment": "hotel", "guest_house": "guest_house",
    "hostel": "hostel", "camp_site": "other", "picnic_site": "other", "alpine_hut": "other",
}
AMENITY_TOURISM = {"restaurant": "restaurant", "fast_food": "restaurant", "cafe": "cafe",
                   "place_of_worship": "heritage"}
HEALTH_KIND = {"hospital": "hospital", "clinic": "clinic", "doctors": "doctors",
               "dentist": "dentist", "pharmacy": "pharmacy"}
# Vietnamese fallback names for unnamed health and education points.
UNNAMED = {"hospital": "Bệnh viện", "clinic": "Phòng khám", "doctors": "Phòng khám",
           "dentist": "Nha khoa", "pharmacy": "Nhà thuốc", "school": "Trường học",
           "kindergarten": "Trường mầm non", "college": "Trường cao đẳng",
           "university": "Trường đại học", "library": "Thư viện"}
EDUCATION_KIND = {"school": "school", "kindergarten": "kindergarten", "college": "college",
                  "university": "university", "library": "library"}


def _multi(geom):
    return geom if geom.geom_type == "MultiPolygon" else MultiPolygon([geom])


def _address(p: dict) -> str | None:
    if p.get("addr_full"):
        return p["addr_full"]
    parts = [p.get("addr_housenumber"), p.get("addr_street")]
    text = " ".join(x for x in parts if x)
    return text or None


def partition(polygons: list) -> list:
    """Make neighbouring polygons disjoint: each keeps only what earlier ones do not cover.

    The source ward polygons were simplified and overlap along their borders (about 1.8 km²
    in all); a point must belong to exactly one ward, so the overlap goes to the ward that
    comes first (lowest GSO code).

    >>> from shapely.geometry import box
    >>> a, b = partition([box(0, 0, 2, 2), box(1, 0, 3, 2)])
    >>> round(a.area, 6), round(b.area, 6), round(a.intersection(b).area, 6)
    (4.0, 2.0, 0.0)
    """
    out = []
    covered = None
    for geom in polygons:
        geom = shapely.make_valid(geom)
        own = geom if covered is None else shapely.make_valid(geom.difference(covered))
        parts = [p for p in shapely.get_parts(own) if p.geom_type == "Polygon"]
        out.append(MultiPolygon(parts))
        covered = geom if covered is None else shapely.union(covered, geom)
    return out


def load_admin_units(conn: psycopg.Connection, data_dir: Path) -> int:
    """Replace the city and its 40 wards. Returns the number of wards."""
    d = data_dir / HUE_DIR
    city = gpd.read_file(d / CITY_FILE)
    wards = gpd.read_file(d / WARDS_FILE)
    codes = json.loads((d / CODES_FILE).read_text(encoding="utf-8"))
    preds = {u["gso_code"]: u["predecessors"] for u in codes["units"]}
    conn.execute("DELETE FROM admin_units WHERE level = 'ward'")
    conn.execute("DELETE FROM admin_units WHERE level = 'city'")
    c = city.iloc[0]
    copy_rows(conn, "admin_units",
              ["gso_code", "level", "name", "unit_type", "source", "geom"],
              [(str(c["gso_code"]), "city", c["name"], "Thành phố", "osm",
                ewkb_hex(_multi(shapely.make_valid(c.geometry))))])
    wards = wards.sort_values("gso_code").reset_index(drop=True)
    wards["geometry"] = partition(list(wards.geometry))
    rows = []
    for _, w in wards.iterrows():
        code = str(w["gso_code"])
        rows.append((code, "ward", w["name"], w["short_name"], w["unit_type"],
                     str(c["gso_code"]), float(w["area_km2"]), int(w["population"]),
                     w["effective_from"], json.dumps(preds.get(code, []), ensure_ascii=False),
                     "vietnam-3d-map", ewkb_hex(_multi(w.geometry))))
    return copy_rows(conn, "admin_units",
                     ["gso_code", "level", "name", "short_name", "unit_type", "parent_code",
                      "area_km2", "population", "effective_from", "predecessors", "source",
                      "geom"], rows)


def load_pois(conn: psycopg.Connection, data_dir: Path) -> dict[str, int]:
    """Replace the OSM-sourced tourism, health and education points."""
    feats = json.loads((data_dir / HUE_DIR / POI_FILE).read_text(encoding="utf-8"))["features"]
    tourism, health, education = [], [], []
    for f in feats:
        p = f["properties"]
        amenity, tag = p.get("amenity"), p.get("tourism")
        name = p.get("name") or p.get("name_vi") or UNNAMED.get(amenity)
        if not name:
            continue
        geom = ewkb_hex(shapely.geometry.shape(f["geometry"]))
        addr = _address(p)
        if amenity in HEALTH_KIND:
            beds = int(p["beds"]) if str(p.get("beds") or "").isdigit() else None
            health.append((p["osm_id"], name, HEALTH_KIND[amenity], beds, addr,
                           p.get("opening_hours"), "osm", geom))
        elif amenity in EDUCATION_KIND:
            education.append((p["osm_id"], name, EDUCATION_KIND[amenity], addr, "osm", geom))
        elif tag in TOURISM_KIND or amenity in AMENITY_TOURISM:
            cat = TOURISM_KIND.get(tag) or AMENITY_TOURISM[amenity]
            tourism.append((p["osm_id"], name, p.get("name_en"), cat, addr,
                            p.get("opening_hours"), "osm", geom))
    for table in POI_TABLES:
        conn.execute(sql.SQL("DELETE FROM {} WHERE source = 'osm'").format(
            sql.Identifier(table)))
    counts = {
        "tourism": copy_rows(conn, TOURISM.table, ["osm_id", "name", "name_en", "category",
                                                    "address", "opening_hours", "source",
                                                    "geom"], tourism),
        "health": copy_rows(conn, HEALTH.table, ["osm_id", "name", "kind", "beds",
                                                        "address", "opening_hours", "source",
                                                        "geom"], health),
        "education": copy_rows(conn, EDUCATION.table, ["osm_id", "name", "kind",
                                                              "address", "source", "geom"],
                               education),
    }
    for table in POI_TABLES:
        assign_wards(conn, table)
    return counts


def assign_wards(conn: psycopg.Connection, table: str) -> None:
    """Set ``ward_code`` by point-in-polygon (the ward containing the point on surface).

    ``table`` must come from the catalog (it is an identifier, not a value).
    """
    conn.execute(sql.SQL(
        "UPDATE {t} AS x SET ward_code = w.gso_code FROM admin_units AS w "
        "WHERE w.level = 'ward' AND x.ward_code IS NULL "
        "AND ST_Intersects(w.geom, ST_PointOnSurface(x.geom))").format(
            t=sql.Identifier(table)))


def load_real(conn: psycopg.Connection, data_dir: Path) -> dict[str, int]:
    """Load every real dataset; returns counts per layer."""
    counts = {"wards": load_admin_units(conn, data_dir)}
    counts.update(load_pois(conn, data_dir))
    return counts
