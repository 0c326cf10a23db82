"""OGC API Maps routes: map tiles (PNG, @2x, rasters), print maps, legends, raster values."""

from __future__ import annotations

import io

import morecantile
import numpy as np
import pytest
import rasterio
from fastapi.testclient import TestClient
from PIL import Image
from pyproj import Transformer

from api.app import create_app
from gis.render import map_xml
from gis.render.style import PostgisParams
from layers import CATALOG, VECTOR_LAYERS
from tests.common import DAI_NOI_LONLAT, HANOI_LONLAT

TMS = morecantile.tms.get("WebMercatorQuad")
T17 = TMS.tile(*DAI_NOI_LONLAT, 17)
T10 = TMS.tile(*DAI_NOI_LONLAT, 10)  # Huế with the sea and the lagoon: data and nodata


@pytest.fixture(scope="module")
def client(demo_settings):
    with TestClient(create_app(demo_settings)) as c:
        yield c


def image(resp) -> np.ndarray:
    with Image.open(io.BytesIO(resp.content)) as img:
        return np.asarray(img.convert("RGBA"))


def test_collection_tile_256_and_512(client):
    base = f"/collections/parcels/map/tiles/WebMercatorQuad/17/{T17.y}/{T17.x}"
    r = client.get(base)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert image(r).shape == (256, 256, 4)
    assert r.headers["etag"] and "max-age" in r.headers["cache-control"]
    for url in (base + "@2x", base + "?tileSize=512"):
        big = client.get(url)
        assert big.status_code == 200
        assert image(big).shape == (512, 512, 4)
    again = client.get(base, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.headers["etag"] == r.headers["etag"]


def test_layers_do_not_vanish_below_their_detail_zoom(client):
    """Parcels (detail from z14) as land-use blocks at z12 and z13, incidents (detail from
    z15) as clusters at z13: the tiles of central Huế are not empty."""
    for layer, z in (("parcels", 12), ("parcels", 13), ("incidents", 13)):
        t = TMS.tile(*DAI_NOI_LONLAT, z)
        tiles = [client.get(f"/collections/{layer}/map/tiles/WebMercatorQuad/{z}/{y}/{x}")
                 for x in (t.x - 1, t.x, t.x + 1) for y in (t.y - 1, t.y, t.y + 1)]
        assert all(r.status_code == 200 for r in tiles)
        assert max((image(r)[..., 3] > 0).mean() for r in tiles) > 0.02, (layer, z)


def test_several_layers_in_one_tile(client):
    url = f"/map/tiles/WebMercatorQuad/17/{T17.y}/{T17.x}"
    parcels = image(client.get(url + "?collections=parcels"))
    both = image(client.get(url + "?collections=parcels,construction,tourism"))
    assert (both[..., 3] >= parcels[..., 3]).all()
    assert (both != parcels).any()
    assert client.get(url).status_code == 200  # every vector layer by default
    bad = client.get(url + "?collections=parcels,nope")
    assert bad.status_code == 404 and bad.json()["code"] == "LayerNotFound"


def test_raster_tiles_with_colormap_and_rescale(client):
    url = f"/collections/flood-depth/map/tiles/WebMercatorQuad/10/{T10.y}/{T10.x}"
    default = image(client.get(url))
    viridis = image(client.get(url + "?colormap=viridis"))
    rescaled = image(client.get(url + "?rescale=0,10"))
    assert default.shape == (256, 256, 4)
    assert (default[..., 3] > 0).any() and (default[..., 3] == 0).any()  # nodata is clear
    assert (default != viridis).any() and (default != rescaled).any()
    assert (default[..., 3] == viridis[..., 3]).all()
    assert image(client.get(url + "@2x")).shape == (512, 512, 4)
    assert client.get("/collections/elevation/map/tiles/WorldCRS84Quad/10/"
                      f"{TMS.tile(*DAI_NOI_LONLAT, 10).y // 2}/0").status_code == 200
    for q in ("colormap=nope", "rescale=3,1", "rescale=a,b"):
        r = client.get(url + "?" + q)
        assert r.status_code == 400, q
        assert r.json()["code"] == "InvalidParameterValue"


@pytest.mark.parametrize("path,status,code", [
    ("/collections/parcels/map/tiles/WebMercatorQuad/25/0/0", 404, "InvalidTile"),
    ("/collections/parcels/map/tiles/WebMercatorQuad/3/0/8", 404, "InvalidTile"),
    ("/collections/parcels/map/tiles/WebMercatorQuad/3/9/0", 404, "InvalidTile"),
    ("/collections/parcels/map/tiles/WebMercatorQuad/3/0/x1", 404, "InvalidTile"),
    ("/collections/parcels/map/tiles/Nope/3/0/0", 404, "TileMatrixSetNotFound"),
    ("/collections/nope/map/tiles/WebMercatorQuad/3/0/0", 404, "LayerNotFound"),
    ("/collections/parcels/map/tiles/WebMercatorQuad/3/0/0?tileSize=300", 400,
     "InvalidParameterValue"),
    ("/collections/wards/map?width=5000&height=5000", 400, "ImageTooLarge"),
    ("/collections/wards/map?width=0", 400, "InvalidParameterValue"),
    ("/collections/wards/map?bbox=1,2,3", 400, "InvalidBBox"),
    ("/collections/wards/map?bbox=3,2,1,4", 400, "InvalidBBox"),
    ("/collections/wards/map?crs=EPSG:1234", 400, "UnknownCRS"),
    ("/collections/wards/map?f=gif", 400, "InvalidParameterValue"),
    ("/collections/wards/map?bgcolor=red&transparent=false", 400, "InvalidParameterValue"),
    ("/collections/wards/legend?lang=fr", 400, "InvalidParameterValue"),
    ("/collections/parcels/value?lon=107.58&lat=16.46", 400, "InvalidParameterValue"),
    ("/collections/flood-depth/value?lon=107.58", 400, "InvalidParameterValue"),
    (f"/collections/flood-depth/value?lon={HANOI_LONLAT[0]}&lat={HANOI_LONLAT[1]}", 400,
     "OutsideHue"),
])
def test_bad_requests(client, path, status, code):
    r = client.get(path)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code


def test_print_map_in_any_crs_and_format(client):
    w, s, e, n = 107.55, 16.43, 107.62, 16.49
    r = client.get(f"/collections/wards/map?bbox={w},{s},{e},{n}&width=500&height=400"
                   "&crs=EPSG:9214")
    assert r.status_code == 200 and image(r).shape == (400, 500, 4)
    # EPSG:4326 as bbox-crs is latitude first; the same box as CRS84 gives the same map.
    lat_first = client.get(f"/collections/wards/map?bbox={s},{w},{n},{e}&bbox-crs=EPSG:4326"
                           "&width=500&height=400&crs=EPSG:9214")
    assert lat_first.content == r.content
    jpeg = client.get(f"/collections/wards/map?bbox={w},{s},{e},{n}&width=300&f=jpeg")
    assert jpeg.headers["content-type"] == "image/jpeg" and jpeg.content[:3] == b"\xff\xd8\xff"
    opaque = image(client.get(f"/collections/wards/map?bbox={w},{s},{e},{n}&width=300"
                              "&transparent=false&bgcolor=0x102030"))
    assert (opaque[..., 3] == 255).all()
    # Mostly the background, seen through the wards' 5 % white fill.
    near_bg = np.abs(opaque[..., :3].astype(int) - (0x10, 0x20, 0x30)).max(axis=2) <= 15
    assert near_bg.mean() > 0.5
    composite = client.get("/map/image?collections=elevation,wards&width=400")
    assert composite.status_code == 200 and image(composite).shape[1] == 400


def test_legend_and_value(client, demo_settings):
    r = client.get("/collections/parcels/legend")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert image(client.get("/collections/elevation/legend?scale=2")).shape[0] > 200
    v = client.get(f"/collections/elevation/value?lon={DAI_NOI_LONLAT[0]}"
                   f"&lat={DAI_NOI_LONLAT[1]}").json()
    x, y = Transformer.from_crs(4326, 9214, always_xy=True).transform(*DAI_NOI_LONLAT)
    with rasterio.open(demo_settings.raster_dir / CATALOG["elevation"].filename) as ds:
        want = float(next(ds.sample([(x, y)]))[0])
    assert v["value"] == pytest.approx(want, abs=1e-3) and v["units"] == "m"


def test_private_fields_never_reach_the_renderer():
    """The datasource SQL selects only the style's public fields."""
    params = PostgisParams.from_dsn("postgresql://u@/db?host=/tmp&port=1")
    for srid in (3857, 4326, 9214):
        xml = map_xml(list(VECTOR_LAYERS.values()), srid, params)
        for layer in VECTOR_LAYERS.values():
            for f in layer.private_fields:
                assert f.name not in xml, (layer.id, f.name)


def test_routes_documented(client):
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/collections/{collection_id}/map/tiles/{tms_id}/{z}/{y}/{x}",
              "/map/tiles/{tms_id}/{z}/{y}/{x}", "/collections/{collection_id}/map",
              "/map/image", "/collections/{collection_id}/legend",
              "/collections/{collection_id}/value", "/wms"):
        assert p in paths
    conf = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-maps-1/1.0/conf/core" in conf


def test_png_tile_is_never_stale_after_a_direct_sql_edit(client, demo_settings):
    """A cached PNG tile is invalidated by a plain SQL UPDATE (trigger → NOTIFY → cache)."""
    import time

    import psycopg

    with psycopg.connect(demo_settings.dsn) as conn:
        pid, use, lon, lat = conn.execute(
            "SELECT id, land_use, ST_X(p), ST_Y(p) FROM (SELECT id, land_use, "
            "ST_PointOnSurface(geom) AS p FROM land_parcels WHERE land_use <> 'SON' ORDER BY "
            "geom <-> ST_SetSRID(ST_MakePoint(%s, %s), 4326) LIMIT 1) s",
            DAI_NOI_LONLAT).fetchone()
    t = TMS.tile(lon, lat, 17)
    url = f"/collections/parcels/map/tiles/WebMercatorQuad/17/{t.y}/{t.x}"
    before = client.get(url)
    assert client.get(url).headers["etag"] == before.headers["etag"]  # cached
    try:
        with psycopg.connect(demo_settings.dsn) as conn:
            conn.execute("UPDATE land_parcels SET land_use = 'SON' WHERE id = %s", (pid,))
        deadline = time.monotonic() + 10
        after = client.get(url)
        while after.content == before.content and time.monotonic() < deadline:
            time.sleep(0.2)
            after = client.get(url)
        assert after.content != before.content
        assert after.headers["etag"] != before.headers["etag"]
    finally:
        with psycopg.connect(demo_settings.dsn) as conn:
            conn.execute("UPDATE land_parcels SET land_use = %s WHERE id = %s", (use, pid))


def test_map_tilesets_metadata(client):
    doc = client.get("/collections/flood-depth/map/tiles").json()
    assert {t["tileMatrixSetURI"].rsplit("/", 1)[1] for t in doc["tilesets"]} == {
        "WebMercatorQuad", "WorldCRS84Quad"}
    one = client.get("/collections/parcels/map/tiles/WebMercatorQuad").json()
    assert one["dataType"] == "map"
    template = next(lk["href"] for lk in one["links"] if lk["rel"] == "item")
    url = (template.replace("{tileMatrix}", "17").replace("{tileRow}", str(T17.y))
           .replace("{tileCol}", str(T17.x)).split("testserver", 1)[1])
    assert client.get(url).headers["content-type"] == "image/png"
    multi = client.get("/map/tiles?collections=wards,parcels").json()
    assert all("collections=wards,parcels" in lk["href"] for t in multi["tilesets"]
               for lk in t["links"] if lk["rel"] == "item")
    assert client.get("/collections/parcels/map/tiles/Nope").status_code == 404
