"""WMS 1.3.0: capabilities, GetMap axis order and formats, GetFeatureInfo on public fields,
legends, ServiceException XML; OWSLib and GDAL against a live server."""

from __future__ import annotations

import io
import json
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from layers import CATALOG
from layers.parcels import LAND_USE
from tests.common import DAI_NOI_LONLAT

NS = {"wms": "http://www.opengis.net/wms", "xlink": "http://www.w3.org/1999/xlink",
      "ogc": "http://www.opengis.net/ogc"}
W = "/wms?SERVICE=WMS&VERSION=1.3.0&"
# Central Huế (lon/lat) and the same box with EPSG:4326's latitude-first axis order.
LON0, LAT0, LON1, LAT1 = 107.56, 16.44, 107.62, 16.48
BBOX_4326 = f"{LAT0},{LON0},{LAT1},{LON1}"
BBOX_CRS84 = f"{LON0},{LAT0},{LON1},{LAT1}"


@pytest.fixture(scope="module")
def client(demo_settings):
    with TestClient(create_app(demo_settings)) as c:
        yield c


@pytest.fixture(scope="module")
def parcel(demo_settings) -> dict:
    """A parcel near Đại Nội: id, public fields, a point inside it, its geometry."""
    with psycopg.connect(demo_settings.dsn) as conn:
        row = conn.execute(
            "SELECT id, parcel_no, land_use, ST_X(p), ST_Y(p), ST_AsBinary(geom) FROM (SELECT "
            "*, ST_PointOnSurface(geom) AS p FROM land_parcels ORDER BY geom <-> "
            "ST_SetSRID(ST_MakePoint(%s, %s), 4326) LIMIT 1) s", DAI_NOI_LONLAT).fetchone()
    return {"id": str(row[0]), "parcel_no": row[1], "land_use": row[2], "lon": row[3],
            "lat": row[4], "geom": shapely.from_wkb(bytes(row[5]))}


def image(content: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(content)) as img:
        return np.asarray(img.convert("RGBA"))


def exception_code(r) -> str:
    assert r.headers["content-type"].startswith("text/xml"), r.text
    root = ET.fromstring(r.content)
    assert root.tag == "{http://www.opengis.net/ogc}ServiceExceptionReport"
    return root.find("ogc:ServiceException", NS).get("code")


def test_capabilities_list_every_layer(client):
    r = client.get(W + "REQUEST=GetCapabilities")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(r.content)
    assert root.get("version") == "1.3.0"
    top = root.find("wms:Capability/wms:Layer", NS)
    assert [c.text for c in top.findall("wms:CRS", NS)] == [
        "EPSG:3857", "EPSG:4326", "CRS:84", "EPSG:9214", "EPSG:3405"]
    layers = {el.find("wms:Name", NS).text: el for el in top.findall("wms:Layer", NS)}
    assert set(layers) == set(CATALOG)
    for name, el in layers.items():
        assert CATALOG[name].title_vi in el.find("wms:Title", NS).text
        assert el.find("wms:Abstract", NS).text
        geo = el.find("wms:EX_GeographicBoundingBox", NS)
        assert geo is not None, name
        west = float(geo.find("wms:westBoundLongitude", NS).text)
        south = float(geo.find("wms:southBoundLatitude", NS).text)
        assert 106.5 < west < 108.5 and 15.5 < south < 17.0
        boxes = {b.get("CRS"): b for b in el.findall("wms:BoundingBox", NS)}
        assert set(boxes) == {"EPSG:3857", "EPSG:4326", "CRS:84", "EPSG:9214", "EPSG:3405"}
        assert float(boxes["EPSG:4326"].get("minx")) == pytest.approx(south, abs=1e-5)
        assert float(boxes["CRS:84"].get("minx")) == pytest.approx(west, abs=1e-5)
        legend = el.find("wms:Style/wms:LegendURL/wms:OnlineResource", NS)
        href = legend.get(f"{{{NS['xlink']}}}href")
        assert "REQUEST=GetLegendGraphic" in href and f"LAYER={name}" in href
        got = client.get(href.split("testserver", 1)[1])
        assert got.status_code == 200 and got.headers["content-type"] == "image/png"


def test_getmap_axis_order_formats_and_transparency(client):
    common = "REQUEST=GetMap&LAYERS=wards,parcels&STYLES=,&WIDTH=300&HEIGHT=200"
    lat_lon = client.get(W + common + f"&CRS=EPSG:4326&BBOX={BBOX_4326}&FORMAT=image/png"
                         "&TRANSPARENT=TRUE")
    lon_lat = client.get(W + common + f"&CRS=CRS:84&BBOX={BBOX_CRS84}&FORMAT=image/png"
                         "&TRANSPARENT=TRUE")
    assert lat_lon.status_code == 200 and lat_lon.headers["content-type"] == "image/png"
    assert lat_lon.content == lon_lat.content
    img = image(lat_lon.content)
    assert img.shape == (200, 300, 4) and (img[..., 3] < 255).any()  # see-through
    # The same box read lon/lat as if it were lat/lon is nowhere near Huế: nothing drawn.
    swapped = image(client.get(W + common + f"&CRS=EPSG:4326&BBOX={BBOX_CRS84}"
                               "&FORMAT=image/png&TRANSPARENT=TRUE").content)
    assert (swapped[..., 3] == 0).all()
    opaque = image(client.get(W + common + f"&CRS=CRS:84&BBOX={BBOX_CRS84}&FORMAT=image/png"
                              "&BGCOLOR=0x00FF00").content)
    assert (opaque[..., 3] == 255).all()
    near_bg = np.abs(opaque[..., :3].astype(int) - (0, 255, 0)).max(axis=2) <= 15
    assert near_bg.mean() > 0.3  # green, seen through the wards' 5 % white fill
    jpeg = client.get(W + common + "&CRS=EPSG:3857&BBOX=11973000,1857000,11980000,1862000"
                      "&FORMAT=image/jpeg")
    assert jpeg.headers["content-type"] == "image/jpeg" and jpeg.content[:3] == b"\xff\xd8\xff"
    for crs, bbox in (("EPSG:9214", "556000,1818000,562000,1824000"),
                      ("EPSG:3405", "775000,1820000,790000,1830000")):
        r = client.get(W + "REQUEST=GetMap&LAYERS=wards,flood-depth&STYLES=&WIDTH=200&HEIGHT=200"
                       f"&CRS={crs}&BBOX={bbox}&FORMAT=image/png&TRANSPARENT=TRUE")
        assert r.status_code == 200, r.text
        assert (image(r.content)[..., 3] > 0).mean() > 0.5, crs


def test_getmap_draws_the_parcel_colour(client, parcel):
    d = 0.0004
    r = client.get(W + "REQUEST=GetMap&LAYERS=parcels&STYLES=&WIDTH=101&HEIGHT=101&CRS=CRS:84"
                   f"&BBOX={parcel['lon'] - d},{parcel['lat'] - d},{parcel['lon'] + d},"
                   f"{parcel['lat'] + d}&FORMAT=image/png&TRANSPARENT=TRUE")
    img = image(r.content)
    want = LAND_USE[parcel["land_use"]][2].lstrip("#")
    want_rgb = np.array([int(want[i:i + 2], 16) for i in (0, 2, 4)])
    centre = img[48:53, 48:53].reshape(-1, 4)
    assert any(np.abs(p[:3].astype(int) - want_rgb).max() <= 3 for p in centre)


def test_getmap_below_the_detail_scale_draws_land_use_blocks(client, demo_settings):
    """At a z12-like scale (parcels are drawn in detail from z14), GetMap in EPSG:4326 and
    EPSG:9214 and the print map draw the land-use blocks, in the land uses' colours."""
    with psycopg.connect(demo_settings.dsn, autocommit=True) as conn:
        conn.execute("SELECT huegis_tiles_rebuild() FROM tiles_state WHERE blocks_dirty")
        lon, lat, x, y = conn.execute(
            "SELECT ST_X(c), ST_Y(c), ST_X(ST_Transform(c, 9214)), ST_Y(ST_Transform(c, 9214)) "
            "FROM (SELECT ST_SetSRID(ST_Centroid(ST_Extent(geom)::geometry), 4326) AS c "
            "FROM land_parcels) s"
            ).fetchone()
    d, m = 0.045, 4800  # 256 px of about 38 m
    colours = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for _, _, c in LAND_USE.values()])
    wms = {crs: image(client.get(
        W + f"REQUEST=GetMap&LAYERS=parcels&STYLES=&WIDTH=256&HEIGHT=256&CRS={crs}&BBOX={bbox}"
        "&FORMAT=image/png&TRANSPARENT=TRUE").content)
        for crs, bbox in (("EPSG:4326", f"{lat - d},{lon - d},{lat + d},{lon + d}"),
                          ("EPSG:9214", f"{x - m},{y - m},{x + m},{y + m}"))}
    r = client.get(f"/collections/parcels/map?bbox={lon - d},{lat - d},{lon + d},{lat + d}"
                   "&crs=EPSG:4326&width=256&height=256")
    assert image(r.content).tolist() == wms["EPSG:4326"].tolist()  # the same renderer
    for crs, img in wms.items():
        assert (img[..., 3] > 0).mean() > 0.01, crs
        px = img[..., :3][img[..., 3] >= 60].astype(int)
        assert len(px) > 50, crs
        off = np.abs(px[:, None, :] - colours[None, :, :]).max(axis=2).min(axis=1)
        assert (off <= 6).mean() > 0.5, crs  # land-use colours (by chance: under 1 %)


def test_getfeatureinfo_formats_public_fields_only(client, parcel):
    d = 0.0005
    bbox = f"{parcel['lat'] - d},{parcel['lon'] - d},{parcel['lat'] + d},{parcel['lon'] + d}"
    base = (W + "REQUEST=GetFeatureInfo&LAYERS=wards,parcels&QUERY_LAYERS=parcels&STYLES="
            f"&CRS=EPSG:4326&BBOX={bbox}&WIDTH=101&HEIGHT=101&I=50&J=50")
    r = client.get(base + "&INFO_FORMAT=application/json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    features = r.json()["features"]
    assert len(features) == 1
    f = features[0]
    assert f["id"] == parcel["id"] and f["collection"] == "parcels"
    assert set(f["properties"]) == {x.name for x in CATALOG["parcels"].public_fields}
    assert "owner_name" not in r.text
    assert shapely.geometry.shape(f["geometry"]).contains(
        shapely.Point(parcel["lon"], parcel["lat"]))
    geo = client.get(base + "&INFO_FORMAT=application/geo%2Bjson&FEATURE_COUNT=3")
    assert json.loads(geo.content)["type"] == "FeatureCollection"
    html = client.get(base + "&INFO_FORMAT=text/html")
    assert html.headers["content-type"].startswith("text/html")
    assert f"<td>{parcel['parcel_no']}</td>" in html.text
    assert '<th title="parcel_no">Số thửa · Parcel number</th>' in html.text  # catalog titles
    text = client.get(base + "&INFO_FORMAT=text/plain")
    assert f"parcel_no = {parcel['parcel_no']}" in text.text
    both = client.get(base.replace("QUERY_LAYERS=parcels", "QUERY_LAYERS=wards,parcels")
                      + "&INFO_FORMAT=application/json").json()
    assert [x["collection"] for x in both["features"]] == ["wards", "parcels"]
    raster = client.get(W + "REQUEST=GetFeatureInfo&LAYERS=flood-depth&QUERY_LAYERS=flood-depth"
                        f"&CRS=EPSG:4326&BBOX={bbox}&WIDTH=101&HEIGHT=101&I=50&J=50"
                        "&INFO_FORMAT=application/json").json()
    assert raster["features"][0]["properties"]["units"] == "m"


@pytest.mark.parametrize("query,code", [
    ("", "MissingParameterValue"),
    ("REQUEST=DescribeLayer", "OperationNotSupported"),
    ("REQUEST=GetMap&LAYERS=nope&CRS=CRS:84&BBOX=1,2,3,4&WIDTH=9&HEIGHT=9&FORMAT=image/png",
     "LayerNotDefined"),
    ("REQUEST=GetMap&LAYERS=wards&CRS=EPSG:2000&BBOX=1,2,3,4&WIDTH=9&HEIGHT=9"
     "&FORMAT=image/png", "InvalidCRS"),
    ("REQUEST=GetMap&LAYERS=wards&CRS=CRS:84&BBOX=1,2,3&WIDTH=9&HEIGHT=9&FORMAT=image/png",
     "InvalidParameterValue"),
    ("REQUEST=GetMap&LAYERS=wards&CRS=CRS:84&BBOX=3,2,1,4&WIDTH=9&HEIGHT=9&FORMAT=image/png",
     "InvalidParameterValue"),
    ("REQUEST=GetMap&LAYERS=wards&CRS=CRS:84&BBOX=1,2,3,4&WIDTH=9&HEIGHT=9&FORMAT=image/gif",
     "InvalidFormat"),
    ("REQUEST=GetMap&LAYERS=wards&CRS=CRS:84&BBOX=1,2,3,4&WIDTH=99999&HEIGHT=9"
     "&FORMAT=image/png", "InvalidParameterValue"),
    ("REQUEST=GetMap&LAYERS=wards&CRS=CRS:84&BBOX=1,2,3,4&WIDTH=abc&HEIGHT=9"
     "&FORMAT=image/png", "InvalidParameterValue"),
    ("REQUEST=GetMap&LAYERS=wards&STYLES=fancy&CRS=CRS:84&BBOX=1,2,3,4&WIDTH=9&HEIGHT=9"
     "&FORMAT=image/png", "StyleNotDefined"),
    ("REQUEST=GetMap&LAYERS=wards&CRS=CRS:84&BBOX=1,2,3,4&WIDTH=9&HEIGHT=9",
     "MissingParameterValue"),
    ("REQUEST=GetFeatureInfo&LAYERS=wards&QUERY_LAYERS=wards&CRS=CRS:84&BBOX=1,2,3,4"
     "&WIDTH=9&HEIGHT=9&I=20&J=1&INFO_FORMAT=text/plain", "InvalidPoint"),
    ("REQUEST=GetFeatureInfo&LAYERS=wards&QUERY_LAYERS=parcels&CRS=CRS:84&BBOX=1,2,3,4"
     "&WIDTH=9&HEIGHT=9&I=2&J=1&INFO_FORMAT=text/plain", "LayerNotQueryable"),
    ("REQUEST=GetFeatureInfo&LAYERS=wards&QUERY_LAYERS=wards&CRS=CRS:84&BBOX=1,2,3,4"
     "&WIDTH=9&HEIGHT=9&I=2&J=1&INFO_FORMAT=application/xml", "InvalidFormat"),
    ("REQUEST=GetLegendGraphic&LAYER=nope&FORMAT=image/png", "LayerNotDefined"),
    ("REQUEST=GetLegendGraphic&LAYER=wards&FORMAT=image/svg", "InvalidFormat"),
])
def test_service_exceptions(client, query, code):
    r = client.get(W + query)
    assert r.status_code == 400
    assert exception_code(r) == code


def test_owslib_against_live_server(live_server):
    from owslib.wms import WebMapService

    wms = WebMapService(f"{live_server}/wms", version="1.3.0")
    assert set(CATALOG) <= set(wms.contents)
    layer = wms.contents["parcels"]
    assert "EPSG:9214" in layer.crsOptions and layer.queryable
    assert layer.styles["default"]["legend"].startswith(live_server)
    w, s, e, n = layer.boundingBoxWGS84
    assert 107 < w < e < 108.3 and 16 < s < n < 16.8
    for srs, bbox in (("EPSG:4326", (LON0, LAT0, LON1, LAT1)),
                      ("EPSG:3857", (11973000, 1857000, 11980000, 1862000))):
        img = wms.getmap(layers=["wards", "parcels"], styles=["", ""], srs=srs, bbox=bbox,
                         size=(256, 200), format="image/png", transparent=True)
        px = image(img.read())
        assert px.shape == (200, 256, 4)
        assert (px[..., 3] > 0).mean() > 0.5, srs  # Huế's wards cover the view


def test_gdal_reads_the_wms(live_server, tmp_path):
    url = (f"WMS:{live_server}/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=wards"
           f"&CRS=EPSG:4326&BBOX={BBOX_4326}&FORMAT=image/png")
    info = subprocess.run(["gdalinfo", url], capture_output=True, text=True, timeout=60)
    assert info.returncode == 0, info.stderr
    assert "OGC Web Map Service" in info.stdout
    out = tmp_path / "wards.png"
    run = subprocess.run(["gdal_translate", "-of", "PNG", "-outsize", "300", "200", url,
                          str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    px = image(out.read_bytes())
    assert px.shape[:2] == (200, 300)
    # Ward outlines (purple) on the white background, where GDAL put them.
    dark = px[..., :3].min(axis=2) < 160
    assert 0.002 < dark.mean() < 0.5
