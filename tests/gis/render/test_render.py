"""The renderer against the demo database: pixels, not just status codes.

Colours are checked where the database says the features are (shapely draws them
independently onto the same pixel grid), raster colours against values read with rasterio.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import morecantile
import numpy as np
import psycopg
import pytest
import shapely
from PIL import Image, ImageDraw, ImageFilter

from gis.render import MapView, Output, RasterStyle, Renderer, legend_png, value_at
from gis.render.engine import ensure_fonts
from gis.render.mapnik_env import mapnik_module
from gis.render.raster import colormap_lut
from gis.render.style import FONT_FACE
from gis.render.views import tile_view
from layers import CATALOG
from layers.parcels import LAND_USE
from tests.common import DAI_NOI_LONLAT

TMS = morecantile.tms.get("WebMercatorQuad")


def rgba(data: bytes) -> np.ndarray:
    import io

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGBA"))


@pytest.fixture(scope="module")
def renderer(demo_settings) -> Renderer:
    with psycopg.connect(demo_settings.dsn) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.columns WHERE column_name = "
            "'geom_3857'")}
        paths = {r[0]: Path(r[1]) for r in conn.execute("SELECT id, path FROM raster_datasets")}
    return Renderer(demo_settings.dsn, paths, frozenset(tables))


@pytest.fixture(scope="module")
def parcel_tile(demo_settings) -> tuple[int, int, int]:
    """(z, x, y) of the zoom-17 tile around the parcel nearest to Đại Nội."""
    with psycopg.connect(demo_settings.dsn) as conn:
        lon, lat = conn.execute(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) AS c FROM "
            "land_parcels ORDER BY geom <-> ST_SetSRID(ST_MakePoint(%s, %s), 4326) LIMIT 1) s",
            DAI_NOI_LONLAT).fetchone()
    t = TMS.tile(lon, lat, 17)
    return t.z, t.x, t.y


def parcels_in(demo_settings, bbox3857) -> list[tuple[str, shapely.Geometry]]:
    with psycopg.connect(demo_settings.dsn) as conn:
        rows = conn.execute(
            "SELECT land_use, ST_AsBinary(ST_Transform(geom, 3857)) FROM land_parcels WHERE "
            "geom && ST_Transform(ST_MakeEnvelope(%s, %s, %s, %s, 3857), 4326)",
            bbox3857).fetchall()
    return [(r[0], shapely.from_wkb(bytes(r[1]))) for r in rows]


def to_pixels(geom: shapely.Geometry, bbox, size: int) -> shapely.Geometry:
    w, s, e, n = bbox
    return shapely.transform(geom, lambda c: np.column_stack(
        ((c[:, 0] - w) / (e - w) * size, (n - c[:, 1]) / (n - s) * size)))


def coverage(geoms, size: int) -> np.ndarray:
    img = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(img)
    for g in geoms:
        for poly in getattr(g, "geoms", [g]):
            draw.polygon(list(poly.exterior.coords), fill=255)
    return np.asarray(img) > 0


def test_mapnik_import_restores_proj_and_gdal_env(demo_settings):
    """Importing Mapnik through the helper leaves PROJ/GDAL as they were: pyproj and rasterio
    still work afterwards (in a fresh interpreter, where Mapnik was not imported yet)."""
    cog = demo_settings.raster_dir / CATALOG["elevation"].filename
    code = (
        "import os\n"
        "before = {k: os.environ.get(k) for k in ('PROJ_LIB', 'PROJ_DATA', 'GDAL_DATA')}\n"

        "from gis.render.mapnik_env import mapnik_module\n"
        "m = mapnik_module()\n"
        "assert 'postgis' in m.DatasourceCache.plugin_names()\n"
        "assert {k: os.environ.get(k) for k in before} == before, os.environ\n"
        "from pyproj import Transformer\n"
        "x, y = Transformer.from_crs(4326, 9214, always_xy=True).transform(107.0, 16.0)\n"
        # VN-2000's datum shift moves the central meridian about 195 m west of 500 km.
        "assert abs(x - 499_805) < 5 and 1_769_000 < y < 1_770_000, (x, y)\n"
        "import rasterio\n"
        f"with rasterio.open({str(cog)!r}) as ds:\n"
        "    assert ds.crs.to_epsg() == 9214\n"
        "    assert ds.read(1, window=((0, 8), (0, 8))).shape == (8, 8)\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[3], timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_parcel_tile_draws_land_use_colours_where_parcels_are(renderer, demo_settings,
                                                               parcel_tile):
    z, x, y = parcel_tile
    view = tile_view("WebMercatorQuad", z, y, x, 256)
    img = rgba(renderer.render(view, [CATALOG["parcels"]], labels=False))
    assert img.shape == (256, 256, 4)
    parcels = parcels_in(demo_settings, view.bbox)
    assert len(parcels) >= 5
    px = [(use, to_pixels(g, view.bbox, 256)) for use, g in parcels]
    covered = coverage([g for _, g in px], 256)
    near = np.asarray(Image.fromarray(covered.astype(np.uint8) * 255).filter(
        ImageFilter.MaxFilter(5))) > 0
    # Transparent background: nothing drawn away from the parcels.
    assert covered.mean() > 0.05
    assert (img[..., 3][~near] == 0).all()
    # Inside each parcel (away from its outline) the colour of its land-use class.
    checked, matched = land_use_colours_inside(img, px)
    assert checked >= 3
    assert matched == checked


def land_use_colours_inside(img: np.ndarray, px: list[tuple[str, shapely.Geometry]]
                            ) -> tuple[int, int]:
    """How many of the shapes (land use, pixel geometry) have room for a pixel 3 px inside
    them, and at how many of those pixels the image has the land use's colour (60 % fill)."""
    size = img.shape[0]
    checked = matched = 0
    for use, g in px:
        inner = g.buffer(-3).intersection(shapely.box(2, 2, size - 2, size - 2))
        if inner.is_empty or inner.area < 4:
            continue
        p = inner.representative_point()
        r, gg, b, a = img[int(p.y), int(p.x)]
        want = LAND_USE[use][2].lstrip("#")
        want_rgb = np.array([int(want[i:i + 2], 16) for i in (0, 2, 4)])
        checked += 1
        matched += (abs(a - 153) <= 3 and np.abs(np.array([r, gg, b]) - want_rgb).max() <= 3)
    return checked, matched


def test_parcels_below_their_detail_zoom_are_land_use_blocks(renderer, demo_settings):
    """At z12 (parcels are drawn in detail from z14) a parcels tile over central Huế is not
    empty: the land-use blocks in their land uses' colours (no outlines), where the database
    has them, the most drawn colour being the land use with the largest area there."""
    with psycopg.connect(demo_settings.dsn, autocommit=True) as conn:
        conn.execute("SELECT huegis_tiles_rebuild() FROM tiles_state WHERE blocks_dirty")
        lon, lat = conn.execute("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent("
                                "geom)::geometry) AS c FROM land_parcels) s").fetchone()
    t = TMS.tile(lon, lat, 12)
    view = tile_view("WebMercatorQuad", t.z, t.y, t.x, 256)
    img = rgba(renderer.render(view, [CATALOG["parcels"]], labels=False))
    drawn = img[..., 3] > 0
    assert drawn.mean() > 0.02  # the demo's parcels cover about 3 × 2 km
    with psycopg.connect(demo_settings.dsn) as conn:
        rows = conn.execute(
            "SELECT land_use, ST_AsBinary(geom_3857) FROM tiles_parcel_blocks WHERE "
            "geom_3857 && ST_MakeEnvelope(%s, %s, %s, %s, 3857)", view.bbox).fetchall()
    blocks = [(r[0], to_pixels(shapely.from_wkb(bytes(r[1])), view.bbox, 256)) for r in rows]
    area: dict[str, float] = {}
    for use, g in blocks:
        area[use] = area.get(use, 0.0) + g.intersection(shapely.box(0, 0, 256, 256)).area
    # Straight alpha: a pixel partly covered by one land use has that land use's colour (up
    # to rounding, larger where the pixel is nearly transparent; mixed pixels are not).
    colours = {use: np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)])
               for use, (_, _, c) in LAND_USE.items()}
    solid = img[..., 3] >= 60
    assert solid.sum() > 200
    px = img[..., :3][solid].astype(int)
    nearest = np.stack([np.abs(px - c).max(axis=1) for c in colours.values()])
    assert (nearest.min(axis=0) <= 6).mean() > 0.5  # by chance: under 1 %
    counts = dict(zip(colours, (nearest <= 6).sum(axis=1), strict=True))
    assert max(counts, key=counts.get) == max(area, key=area.get)
    # Nothing is drawn away from the blocks.
    covered = coverage([g for _, g in blocks], 256)
    near = np.asarray(Image.fromarray(covered.astype(np.uint8) * 255).filter(
        ImageFilter.MaxFilter(5))) > 0
    assert not (drawn & ~near).any()


def test_incidents_below_their_detail_zoom_are_clusters(renderer, demo_settings):
    """At z13 incidents are one marker per 16 px cell, at the mean of the cell's public
    locations: every cluster's centre is drawn, and nothing is drawn away from them."""
    t = TMS.tile(*DAI_NOI_LONLAT, 13)
    view = tile_view("WebMercatorQuad", t.z, t.y, t.x, 256, buffer=0)
    img = rgba(renderer.render(view, [CATALOG["incidents"]], labels=False))
    cell = (view.bbox[2] - view.bbox[0]) / 16
    w, s, e, n = view.bbox
    with psycopg.connect(demo_settings.dsn) as conn:  # the tile and the cells around it
        pts = np.array(conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(geom, 3857) AS p "
            "FROM incidents_public) s WHERE p && ST_MakeEnvelope(%s, %s, %s, %s, 3857)",
            (w - cell, s - cell, e + cell, n + cell)).fetchall())
    assert len(pts) > 50
    keys = np.floor(pts / cell)
    centres = []
    for k in np.unique(keys, axis=0):
        c = pts[(keys == k).all(axis=1)].mean(axis=0)
        centres.append(to_pixels(shapely.Point(c), view.bbox, 256))
    assert len(centres) < len(pts)  # clustered, not one marker per report
    drawn = img[..., 3] > 0
    for c in centres:
        if 1 <= c.x < 255 and 1 <= c.y < 255:
            assert drawn[int(c.y), int(c.x)]
    # The biggest marker is 3 × the symbol's size (24 px across).
    ys, xs = np.nonzero(drawn)
    cx = np.array([c.x for c in centres])
    cy = np.array([c.y for c in centres])
    far = [(x, y) for x, y in zip(xs, ys, strict=True)
           if np.min(np.hypot(cx - x - 0.5, cy - y - 0.5)) > 14]
    assert not far


def test_2x_tile_is_512_px_with_the_same_picture(renderer, parcel_tile):
    z, x, y = parcel_tile
    one = rgba(renderer.render(tile_view("WebMercatorQuad", z, y, x, 256),
                               [CATALOG["parcels"]], labels=False))
    two = rgba(renderer.render(tile_view("WebMercatorQuad", z, y, x, 512),
                               [CATALOG["parcels"]], labels=False))
    assert two.shape == (512, 512, 4)
    small = np.asarray(Image.fromarray(two).resize((256, 256), Image.BOX)).astype(int)
    assert np.abs(small[..., 3] - one[..., 3].astype(int)).mean() < 10
    assert ((small[..., 3] > 0) == (one[..., 3] > 0)).mean() > 0.95


def test_labels_render(renderer):
    """Ward names are drawn: the image with labels differs from the one without by dark
    text pixels."""
    t = TMS.tile(*DAI_NOI_LONLAT, 12)
    view = tile_view("WebMercatorQuad", t.z, t.y, t.x, 256)
    with_labels = rgba(renderer.render(view, [CATALOG["wards"]]))
    without = rgba(renderer.render(view, [CATALOG["wards"]], labels=False))
    diff = np.abs(with_labels.astype(int) - without.astype(int)).max(axis=2) > 0
    assert diff.sum() > 200
    text = (with_labels[..., 3] > 200) & (with_labels[..., :3].max(axis=2) < 80) & diff
    assert text.sum() > 50


def _text_image(text: str) -> np.ndarray:
    """``text`` drawn by Mapnik with the renderer's font, black on white."""
    mapnik = mapnik_module()
    ensure_fonts()
    m = mapnik.Map(200, 100)
    mapnik.load_map_from_string(m, (
        '<Map srs="epsg:3857" background-color="white"><Style name="s"><Rule>'
        f'<TextSymbolizer face-name="{FONT_FACE}" size="40" fill="black" placement="point">'
        '[name]</TextSymbolizer></Rule></Style><Layer name="l" srs="epsg:3857">'
        '<StyleName>s</StyleName></Layer></Map>'))
    m.layers[0].datasource = mapnik.Datasource(
        type="csv", separator="|", inline=f'wkt|name\n"POINT(0 0)"|{text}\n')
    m.zoom_to_box(mapnik.Box2d(-100, -50, 100, 50))
    im = mapnik.Image(200, 100)
    mapnik.render(m, im)
    im.demultiply()
    return np.frombuffer(im.to_string(), np.uint8).reshape(100, 200, 4)[..., 0] < 128


@pytest.mark.parametrize("letter", ["ậ", "ệ", "ộ", "ữ", "Đ", "ỹ"])
def test_vietnamese_diacritics_have_glyphs(letter):
    """Stacked Vietnamese diacritics are real glyphs (not the missing-glyph box) and add ink
    above or below the base letter."""
    base = {"ậ": "a", "ệ": "e", "ộ": "o", "ữ": "u", "Đ": "D", "ỹ": "y"}[letter]
    img, plain, missing = _text_image(letter), _text_image(base), _text_image("\ue000")
    assert img.any() and not np.array_equal(img, missing)
    rows, plain_rows = np.nonzero(img.any(axis=1))[0], np.nonzero(plain.any(axis=1))[0]
    assert not np.array_equal(img, plain)
    if letter != "Đ":
        assert rows.min() < plain_rows.min() or rows.max() > plain_rows.max()


def test_raster_tile_colours_match_the_values(renderer, demo_settings):
    import rasterio
    from pyproj import Transformer

    layer = CATALOG["flood-depth"]
    t = TMS.tile(*DAI_NOI_LONLAT, 12)
    view = tile_view("WebMercatorQuad", t.z, t.y, t.x, 256)
    img = rgba(renderer.render(view, [layer]))
    assert img.shape == (256, 256, 4)
    path = renderer.raster_path["flood-depth"]
    lut = colormap_lut("blues")
    w, s, e, n = view.bbox
    to_metric = Transformer.from_crs(3857, 9214, always_xy=True)
    checked = matched = 0
    with rasterio.open(path) as ds:
        for j in range(8, 256, 16):
            for i in range(8, 256, 16):
                mx, my = to_metric.transform(w + (i + 0.5) * (e - w) / 256,
                                             n - (j + 0.5) * (n - s) / 256)
                v = next(ds.sample([(mx, my)]))[0]
                if v == layer.nodata:
                    assert img[j, i, 3] == 0
                    continue
                want = lut[int(np.clip(round(v / 3.0 * 255), 0, 255))][:3]
                checked += 1
                matched += np.abs(img[j, i, :3].astype(int) - want.astype(int)).max() <= 40
    assert checked > 50
    assert matched / checked > 0.9


def test_value_at_matches_rasterio(demo_settings, renderer):
    import rasterio
    from pyproj import Transformer

    path = renderer.raster_path["elevation"]
    x, y = Transformer.from_crs(4326, 9214, always_xy=True).transform(*DAI_NOI_LONLAT)
    with rasterio.open(path) as ds:
        want = float(next(ds.sample([(x, y)]))[0])
    assert value_at(path, *DAI_NOI_LONLAT) == pytest.approx(want, abs=1e-3)


def test_composite_draws_layers_in_order_and_jpeg_is_flat(renderer):
    t = TMS.tile(*DAI_NOI_LONLAT, 11)
    view = tile_view("WebMercatorQuad", t.z, t.y, t.x, 256)
    layers = [CATALOG["flood-depth"], CATALOG["wards"]]
    png = rgba(renderer.render(view, layers))
    jpeg = renderer.render(view, layers, Output("jpeg"))
    assert jpeg[:3] == b"\xff\xd8\xff"
    flat = rgba(jpeg)
    assert (flat[..., 3] == 255).all()
    raster_only = rgba(renderer.render(view, layers[:1]))
    assert (png[..., 3] >= raster_only[..., 3]).all()  # wards drawn over the raster


def test_map_view_in_vn2000(renderer):
    """A map in EPSG:9214 (PostGIS transforms the rows): wards cover the middle of Huế."""
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, 9214, always_xy=True).transform(*DAI_NOI_LONLAT)
    view = MapView((x - 5000, y - 5000, x + 5000, y + 5000), 9214, 300, 300)
    img = rgba(renderer.render(view, [CATALOG["wards"]], scale_limits=False))
    assert (img[..., 3] > 0).mean() > 0.5  # the 5 % fill covers it all


def test_legend_shows_every_class_colour():
    img = rgba(legend_png(CATALOG["parcels"]))
    colours = {tuple(c) for c in img[..., :3].reshape(-1, 3)}
    for _, _, hex_colour in LAND_USE.values():
        c = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
        over_white = tuple(np.rint(c * 0.6 + 255 * 0.4).astype(int))
        assert any(np.abs(np.array(k) - over_white).max() <= 2 for k in colours), hex_colour
    raster = rgba(legend_png(CATALOG["flood-depth"], "en", 2.0,
                             RasterStyle.parse(CATALOG["flood-depth"])))
    assert raster.shape[0] > 200


def test_database_down_is_a_503_not_a_crash(demo_settings):
    from gis import db
    from gis.errors import DatabaseUnavailable

    gone = Renderer(db.with_database(demo_settings.dsn, "huegis_no_such_database"))
    t = TMS.tile(*DAI_NOI_LONLAT, 12)
    with pytest.raises(DatabaseUnavailable):
        gone.render(tile_view("WebMercatorQuad", t.z, t.y, t.x, 256), [CATALOG["wards"]])


def test_png_holds_exactly_the_drawn_pixels(renderer):
    """PNG is lossless: a transparent map decodes to Mapnik's pixels; a flattened one to
    them over the background colour."""
    t = TMS.tile(*DAI_NOI_LONLAT, 15)
    view = tile_view("WebMercatorQuad", t.z, t.y, t.x, 512)
    layers = [CATALOG["parcels"], CATALOG["incidents"]]
    drawn = renderer.vector_rgba(view, layers)
    assert (drawn[..., 3] > 0).mean() > 0.05
    assert (rgba(renderer.render(view, layers)) == drawn).all()
    flat = rgba(renderer.render(view, layers, Output("png", False, (10, 200, 30))))
    bg = Image.new("RGBA", (512, 512), (10, 200, 30, 255))
    want = np.asarray(Image.alpha_composite(bg, Image.fromarray(drawn, "RGBA")))
    assert (flat == want).all()


def test_incidents_in_detail_draw_the_newest_report_of_each_marker_cell(renderer,
                                                                       demo_settings):
    """From their detail zoom, incidents draw one marker per 8 × 8 px cell (the symbol's
    size): the newest report's, at its own public location, in its status colour."""
    layer = CATALOG["incidents"]
    t = TMS.tile(*DAI_NOI_LONLAT, 15)
    view = tile_view("WebMercatorQuad", t.z, t.y, t.x, 256, buffer=0)
    img = rgba(renderer.render(view, [layer], labels=False))
    w, s, e, n = view.bbox
    cell = (e - w) / 256 * 2 * layer.style.radius
    with psycopg.connect(demo_settings.dsn) as conn:
        rows = conn.execute(
            "SELECT id, status, ST_X(p), ST_Y(p) FROM (SELECT id, status, "
            "ST_Transform(geom, 3857) AS p FROM incidents_public) s "
            "WHERE p && ST_MakeEnvelope(%s, %s, %s, %s, 3857)", (w, s, e, n)).fetchall()
    newest: dict[tuple[int, int], tuple] = {}
    for id_, status, x, y in rows:
        k = (int(np.floor(x / cell)), int(np.floor(y / cell)))
        if k not in newest or id_ > newest[k][0]:
            newest[k] = (id_, status, x, y)
    assert len(rows) > len(newest) > 20  # several reports share cells, and are thinned
    def colour(hex_colour: str) -> np.ndarray:
        return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])

    colours = {v: colour(c) for v, c in layer.style.classes}
    drawn, right = img[..., 3] > 0, 0
    for _, status, x, y in newest.values():
        p = to_pixels(shapely.Point(x, y), view.bbox, 256)
        if 1 <= p.x < 255 and 1 <= p.y < 255:
            px = img[int(p.y), int(p.x)]
            assert drawn[int(p.y), int(p.x)]
            want = colours.get(status, colour(layer.style.fill))  # the others: the fill
            right += np.abs(px[:3].astype(int) - want).max() <= 40
    # Markers of neighbouring cells may cover a centre; most show their own colour.
    assert right > 0.8 * len(newest)
    # Nothing is drawn but these markers (4 px radius, 1 px outline, placed on whole pixels).
    ys, xs = np.nonzero(drawn)
    kept = np.array([[(x - w) / (e - w) * 256, (n - y) / (n - s) * 256]
                     for _, _, x, y in newest.values()])
    d = np.min(np.hypot(kept[:, 0][None, :] - xs[:, None] - 0.5,
                        kept[:, 1][None, :] - ys[:, None] - 0.5), axis=1)
    assert (d <= layer.style.radius + 2.5).all()


def test_parcels_are_outlined_from_zoom_16(renderer):
    """Parcels are filled at 60 % opacity; their opaque outlines are drawn from zoom 16 (at
    zoom 14–15 they would hide the land-use colours)."""
    opaque = {}
    for z in (15, 16):
        t = TMS.tile(*DAI_NOI_LONLAT, z)
        img = rgba(renderer.render(tile_view("WebMercatorQuad", z, t.y, t.x, 256, buffer=0),
                                   [CATALOG["parcels"]], labels=False))
        drawn = img[..., 3] > 0
        assert drawn.mean() > 0.02
        opaque[z] = (img[..., 3] > 170).sum() / drawn.sum()
    assert opaque[15] == 0
    assert opaque[16] > 0.1
