"""Vector tiles (MVT) built in PostGIS with ST_AsMVT from the layer's declaration.

Less work per tile than the naive query: the envelope comes from morecantile (no
``ST_TileEnvelope``/``ST_Transform`` of it per row), rows are found and clipped on the stored
``geom_3857`` (WebMercatorQuad) or the native ``geom`` (WorldCRS84Quad, EPSG:4326), and low
zooms read the generalized views of :mod:`gis.tiles.generalize`. Public fields only; null
values are not encoded (``ST_AsMVT`` skips them).

Size budget: when a tile's bytes exceed ``max_bytes`` (``HUEGIS_TILE_MAX_BYTES``) or it has
more than ``max_features`` features, it is built again with the geometries simplified and
the smallest features (area for polygons, length for lines) dropped first, doubling the
threshold each time; points are thinned evenly. Never an arbitrary ``LIMIT``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import morecantile

from gis.errors import InvalidTile, TileMatrixSetNotFound
from gis.sqlbuild import id_is_integer, ident, literal, source_ref, visible_fields
from gis.tiles import generalize
from layers import Layer

EXTENT = 4096
BUFFER = 64
SUPPORTED_TMS = ("WebMercatorQuad", "WorldCRS84Quad")
# PostGIS SRID of each supported matrix set (WorldCRS84Quad is lon/lat, i.e. 4326 with x=lon).
TMS_SRID = {"WebMercatorQuad": 3857, "WorldCRS84Quad": 4326}
MAX_ZOOM = 24
# A constant true declared PARALLEL UNSAFE (migration 0010): tile queries plan no parallel
# workers, whose start-up only costs when every core is busy with other tiles.
SERIAL = "huegis_tiles_serial()"
_TMS: dict[str, morecantile.TileMatrixSet] = {}
REDUCTION_STEPS = 4


def tile_matrix_set(tms_id: str) -> morecantile.TileMatrixSet:
    """The morecantile TileMatrixSet ``tms_id``, or ``TileMatrixSetNotFound``."""
    if tms_id not in SUPPORTED_TMS:
        raise TileMatrixSetNotFound(
            f"unknown tile matrix set {tms_id!r}; supported: {', '.join(SUPPORTED_TMS)}")
    tms = _TMS.get(tms_id)
    if tms is None:  # morecantile.tms.get parses the JSON on every call: keep it
        tms = _TMS[tms_id] = morecantile.tms.get(tms_id)
    return tms


def check_tile(tms: morecantile.TileMatrixSet, z: int, x: int, y: int) -> None:
    """Raise ``InvalidTile`` unless z/x/y address a tile of ``tms``.

    >>> check_tile(tile_matrix_set("WebMercatorQuad"), 1, 1, 1)
    >>> check_tile(tile_matrix_set("WebMercatorQuad"), 1, 2, 0)
    Traceback (most recent call last):
    ...
    gis.errors.InvalidTile: tile column 2 is out of range 0..1 at zoom 1
    """
    if not tms.minzoom <= z <= min(tms.maxzoom, MAX_ZOOM):
        raise InvalidTile(f"zoom {z} is out of range {tms.minzoom}..{min(tms.maxzoom, MAX_ZOOM)}")
    matrix = tms.matrix(z)
    if not 0 <= x < matrix.matrixWidth:
        raise InvalidTile(f"tile column {x} is out of range 0..{matrix.matrixWidth - 1} "
                          f"at zoom {z}")
    if not 0 <= y < matrix.matrixHeight:
        raise InvalidTile(f"tile row {y} is out of range 0..{matrix.matrixHeight - 1} "
                          f"at zoom {z}")


def tile_fields(layer: Layer, z: int) -> list[str]:
    """Public fields carried by the layer's tiles at zoom ``z`` (long text only when zoomed
    in).

    >>> from layers import VECTOR_LAYERS
    >>> "description" in tile_fields(VECTOR_LAYERS["incidents"], 15)
    False
    >>> "owner_name" in tile_fields(VECTOR_LAYERS["parcels"], 18)
    False
    """
    return generalize.fields_at(layer, visible_fields(layer), z)


def _tile_geom(geom: str, raw: str | None, kind: str, env: str, benv: str,
               shaped: bool = False) -> str:
    """The expression of a feature's geometry in tile coordinates.

    A feature whose bounding box lies inside the buffered tile (``raw @ benv``) and is at
    least two tile units wide and high needs no clipping and no validation pass: it is
    moved to tile coordinates by one ``ST_Affine`` (y pointing down) and snapped to the
    integer grid, its rings first oriented as ``ST_AsMVTGeom`` leaves them (exterior
    clockwise in world coordinates, so clockwise on screen). Every other feature — crossing
    the buffer's edge, or small enough to collapse — goes through ``ST_AsMVTGeom``. ``raw``
    is the stored column whose cached bounding box is tested (``None``: always
    ``ST_AsMVTGeom``, e.g. for a geometry transformed on the fly). ``shaped``: ``raw``
    is the ``geom_3857`` of a polygon layer drawn in detail, whose table stores its rings
    oriented and the bounding box's shorter side in ``geom_3857_span`` (migration 0011;
    ``geom`` is then ``raw`` or ``raw`` simplified, which keeps the vertex order).
    """
    exact = f"ST_AsMVTGeom({geom}, {env}::box2d, {EXTENT}, {BUFFER}, true)"
    if raw is None:
        return exact
    oriented = f"ST_ForcePolygonCW({geom})" if kind == "polygon" and not shaped else geom
    x0, y0, x1, y1 = "$1::float8", "$2::float8", "$3::float8", "$4::float8"
    fast = (f"ST_SnapToGrid(ST_Affine({oriented}, {EXTENT} / ({x1} - {x0}), 0, 0, "
            f"{EXTENT} / ({y0} - {y1}), {EXTENT} * {x0} / ({x0} - {x1}), "
            f"{EXTENT} * {y1} / ({y1} - {y0})), 1)")
    two = f"2 * ({x1} - {x0}) / {EXTENT}"  # two tile units, in the CRS's units
    if kind == "point":
        big = "true"
    elif shaped:
        alias = raw.split(".")[0]
        return (f"CASE WHEN {alias}.geom_3857_span >= {two} AND {raw} @ {benv} THEN {fast} "
                f"ELSE {exact} END")
    else:
        join = " AND " if kind == "polygon" else " OR "
        big = (f"(ST_XMax({raw}) - ST_XMin({raw}) >= {two}{join}"
               f"ST_YMax({raw}) - ST_YMin({raw}) >= {two})")
    return f"CASE WHEN {raw} @ {benv} AND {big} THEN {fast} ELSE {exact} END"


@lru_cache(maxsize=512)
def _layer_sql(layer: Layer, mode: str, srid: int, fields: tuple[str, ...],
               reduced: bool, bucket: int, ranked: bool = False) -> str:
    """SQL of one layer's MVT; parameters ``$1..$4`` tile bounds, ``$5..$8`` buffered
    bounds (tile CRS, double precision), then either ``$9`` the most features a tile is
    built from at once (more: only the count comes back, see :func:`layer_tile`) or, when
    ``reduced``, ``$9`` how many of the largest features to keep (points: keep one in
    ``$9``) and ``$10`` the simplification tolerance. ``ranked`` (polygons with a stored
    area): the ``$9`` largest features, not simplified, in one pass (ranking on a stored
    number costs less than counting first). Returns ``(mvt, features)``."""
    env = f"ST_MakeEnvelope($1, $2, $3, $4, {srid})"
    benv = f"ST_MakeEnvelope($5, $6, $7, $8, {srid})"
    native = "geom_3857" if srid == 3857 else "geom"
    name = literal(layer.id)
    id_arg = ""
    cols = ", ".join(f"t.{ident(f)}" for f in fields)
    src = source_ref(layer)  # public tiles read the public view (sensitive points rounded)

    if mode == "clusters":
        # A 16×16 grid per tile; a cluster never straddles tiles, so a point's tile is
        # the only one its change touches.
        g = "t.geom_3857" if srid == 3857 else "t.geom"
        return (
            f"WITH p AS (SELECT floor((ST_X({g}) - $1) / (($3 - $1) / 16)) AS gx, "
            f"floor((ST_Y({g}) - $2) / (($4 - $2) / 16)) AS gy, t.category, {g} AS g "
            f"FROM {src} AS t WHERE {g} && {env}), "
            "c AS (SELECT count(*)::int AS count, mode() WITHIN GROUP (ORDER BY category) "
            "AS category, ST_Centroid(ST_Collect(g)) AS g FROM p GROUP BY gx, gy), "
            f"m AS (SELECT ST_AsMVTGeom(c.g, {env}::box2d, {EXTENT}, 0, true) AS __geom, "
            "c.count, c.category FROM c) "
            f"SELECT ST_AsMVT(m.*, {name}, {EXTENT}, '__geom'), count(m.__geom) FROM m "
            f"WHERE {SERIAL}")

    if mode == "blocks":
        source = "tiles_parcel_blocks AS t"
        raw = "t.geom_3857" if srid == 3857 else None
        geom = "t.geom_3857" if srid == 3857 else "ST_Transform(t.geom_3857, 4326)"
        where = (f"t.geom_3857 && {benv}" if srid == 3857
                 else f"t.geom_3857 && ST_Transform({benv}, 3857)")
        cols = "t.land_use, t.parcels, t.area_m2"
        kind = "polygon"
    elif mode == "wards":
        source = (f"{src} AS t JOIN tiles_wards_gen AS w "
                  f"ON w.id = t.id AND w.z = {int(bucket)}")
        raw = "w.geom_3857" if srid == 3857 else None
        geom = "w.geom_3857" if srid == 3857 else "ST_Transform(w.geom_3857, 4326)"
        where = (f"w.geom_3857 && {benv}" if srid == 3857
                 else f"w.geom_3857 && ST_Transform({benv}, 3857)")
        kind = "polygon"
    else:
        source = f"{src} AS t"
        raw = geom = f"t.{ident(native)}"
        kind = ("polygon" if layer.is_polygonal else
                "point" if layer.geometry_type in ("Point", "MultiPoint") else "line")
        # Detail polygons and lines whose box meets the tile, as the textbook query reads
        # them (their parts in the buffer are kept by the clipping); points also from the
        # buffer, so icons and labels crossing the tile's edge are drawn whole. (The
        # generalized views keep everything in the buffer: a ward never vanishes.)
        where = f"{geom} && {benv if kind == 'point' else env}"
        if id_is_integer(layer) and layer.id_column not in fields:
            cols = f"t.{ident(layer.id_column)} AS __id" + (", " + cols if cols else "")
            id_arg = ", '__id'"

    order = ""
    stored = _stored_size(layer) if mode == "detail" else None
    if ranked:  # the $9 largest by their stored size, as they are: no count needed first
        order = (f" ORDER BY t.{ident(stored)} DESC NULLS LAST, t.{ident(layer.id_column)} "
                 "LIMIT $9::bigint")
    elif reduced:
        if kind == "point":
            key = f"t.{ident(layer.id_column)}" if id_is_integer(layer) else "0"
            where += f" AND ({key} % greatest($9::bigint, 1)) = 0 AND $10::float8 >= 0"
        else:
            size = (f"ST_Area({geom}) DESC" if kind == "polygon" else
                    f"ST_Length({geom}) DESC")
            if stored is not None:  # the stored area ranks alike, without reading shapes
                size = f"t.{ident(stored)} DESC NULLS LAST, t.{ident(layer.id_column)}"
            geom = f"ST_Simplify({geom}, $10::float8, true)"
            order = f" ORDER BY {size} LIMIT $9"
    shaped = mode == "detail" and kind == "polygon" and srid == 3857
    body = (f"SELECT {_tile_geom(geom, raw, kind, env, benv, shaped)} AS __geom"
            + (", " + cols if cols else "") + f" FROM {source} WHERE {where}{order}")
    build = f"SELECT ST_AsMVT(m.*, {name}, {EXTENT}, '__geom'{id_arg}) FROM ({body}) AS m"
    if reduced or ranked:
        return (f"WITH m AS ({body}) SELECT ST_AsMVT(m.*, {name}, {EXTENT}, '__geom'{id_arg}), "
                f"count(m.__geom) FROM m WHERE {SERIAL}")
    # Count first, build only when the count is within $9: a tile far over the budget goes
    # straight to its reduction instead of being built in vain. The scalar subquery is an
    # InitPlan, run only when the CASE needs it.
    # Counting stops one row past $9 (no need to count the rest of a tile over budget),
    # except for points, whose thinning needs their number.
    cap = "" if kind == "point" else " LIMIT $9::bigint + 1"
    return (f"WITH n AS (SELECT count(*) AS n FROM (SELECT FROM {source} WHERE {where}{cap})"
            f" AS c) SELECT CASE WHEN n.n <= $9::bigint THEN ({build}) END, n.n FROM n "
            f"WHERE {SERIAL}")


@lru_cache(maxsize=64)
def _stored_size(layer: Layer) -> str | None:
    """The field holding a polygon's area in m² (``derive="area"``), if the layer has one.

    >>> from layers import VECTOR_LAYERS
    >>> _stored_size(VECTOR_LAYERS["parcels"]), _stored_size(VECTOR_LAYERS["tourism"])
    ('area_m2', None)
    """
    if not layer.is_polygonal:
        return None
    return next((f.name for f in layer.fields if f.derive == "area"), None)


def _ranked(layer: Layer, z: int) -> bool:
    """Whether ``layer``'s tile at ``z`` is built from its largest features by their stored
    size in one pass (see :func:`_layer_sql`)."""
    return generalize.mode_at(layer, z) == "detail" and _stored_size(layer) is not None


@dataclass(frozen=True)
class TilePlan:
    """The SQL and arguments of one layer's tile, and whether it can be reduced."""

    sql: str
    args: tuple
    reducible: bool
    gated: bool = False  # built only within a feature count: NULL bytes mean "over"


_HALF = 20037508.342789244  # half the Web Mercator world, in metres


def tile_bounds(tms: morecantile.TileMatrixSet, z: int, x: int, y: int
                ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Tile bounds and bounds widened by the buffer, in the matrix set's CRS.

    >>> wmq = tile_matrix_set("WebMercatorQuad")
    >>> b = wmq.xy_bounds(morecantile.Tile(13104, 7622, 14))
    >>> mine = tile_bounds(wmq, 14, 13104, 7622)[0]
    >>> max(abs(u - v) for u, v in zip(mine, (b.left, b.bottom, b.right, b.top))) < 1e-6
    True
    """
    if tms.id == "WebMercatorQuad":  # the arithmetic of morecantile's xy_bounds, inlined
        size = 2 * _HALF / (1 << z)
        left, top = -_HALF + x * size, _HALF - y * size
        b = (left, top - size, left + size, top)
    else:
        xy = tms.xy_bounds(morecantile.Tile(x, y, z))
        b = (xy.left, xy.bottom, xy.right, xy.top)
    pad_x = (b[2] - b[0]) * BUFFER / EXTENT
    pad_y = (b[3] - b[1]) * BUFFER / EXTENT
    return b, (b[0] - pad_x, b[1] - pad_y, b[2] + pad_x, b[3] + pad_y)


def plan(layer: Layer, tms_id: str, z: int, x: int, y: int,
         keep: int | None = None, tolerance: float = 0.0, at_most: int = 1 << 62
         ) -> TilePlan | None:
    """What to run for ``layer``'s tile (``None`` when the layer has nothing at ``z``).

    With ``keep``, a reduction: only the ``keep`` largest features, simplified by
    ``tolerance`` tile units (points: one in ``keep``). Without, the tile is built only if
    it has at most ``at_most`` features (otherwise only their number comes back).
    """
    mode = generalize.mode_at(layer, z)
    if mode == "none":
        return None
    tms = tile_matrix_set(tms_id)
    srid = TMS_SRID[tms_id]
    env, benv = tile_bounds(tms, z, x, y)
    fields = tuple(tile_fields(layer, z))
    reducible = mode != "clusters"
    reduced = keep is not None and reducible
    ranked = not reduced and _ranked(layer, z)
    sql = _layer_sql(layer, mode, srid, fields, reduced, generalize.ward_bucket(z), ranked)
    if not reducible:
        return TilePlan(sql, env, False)
    if reduced:
        unit = (env[2] - env[0]) / EXTENT  # one tile unit in the CRS's units
        return TilePlan(sql, (*env, *benv, int(keep), float(unit * tolerance)), True)
    return TilePlan(sql, (*env, *benv, int(at_most)), True, gated=not ranked)


def _is_points(layer: Layer, z: int) -> bool:
    return (generalize.mode_at(layer, z) == "detail"
            and layer.geometry_type in ("Point", "MultiPoint"))


def feature_bytes(layer: Layer, z: int) -> tuple[int, int]:
    """``(least, likely)`` bytes one feature of ``layer`` takes in a tile at zoom ``z``:
    the least is the smallest geometry of its type plus two bytes of tags per field (a
    tile with more features than the budget holds at that size is surely over it); the
    likely size (three times that geometry, twelve bytes per field) says how many features
    a reduced tile starts from. Fixed numbers, so a tile's bytes never depend on which
    tiles a worker made before.

    >>> from layers import VECTOR_LAYERS
    >>> feature_bytes(VECTOR_LAYERS["parcels"], 18), feature_bytes(VECTOR_LAYERS["parcels"], 16)
    ((32, 156), (16, 60))
    """
    mode = generalize.mode_at(layer, z)
    fields = {"blocks": 3, "clusters": 2}.get(mode, len(tile_fields(layer, z)) + 1)
    if mode in ("blocks", "wards") or (mode == "detail" and layer.is_polygonal):
        geometry = 12  # MoveTo, three LineTo, ClosePath
    elif mode == "clusters" or layer.geometry_type in ("Point", "MultiPoint"):
        geometry = 3
    else:
        geometry = 6
    return geometry + 2 * fields, 3 * geometry + 12 * fields


async def layer_tile(conn, layer: Layer, tms_id: str, z: int, x: int, y: int, *,
                     max_bytes: int = 500_000, max_features: int = 20_000) -> bytes:
    """The MVT bytes of ``layer`` (``b""`` when empty), within the size budget.

    ``conn`` is an asyncpg connection or pool. Polygons with a stored area (parcels) are
    built in one pass from their largest features, as many as should fit at their likely
    size (:func:`feature_bytes`). Other layers are counted first: a tile with more features
    than the budget could hold even at their least size is never built in full but from
    its largest features only (as many as should fit at their likely size). Over budget, a
    tile is built again from fewer (estimated from its own bytes per feature), simplified
    by one more tile unit at each further attempt.
    """
    least, likely = feature_bytes(layer, z)
    cap = max_bytes // (likely if _ranked(layer, z) else least)
    p = plan(layer, tms_id, z, x, y, at_most=min(max_features, cap))
    if p is None:
        return b""
    row = await conn.fetchrow(p.sql, *p.args)
    data: bytes | None = bytes(row[0]) if row[0] is not None else (None if p.gated else b"")
    count = row[1] or 0
    total = count
    for step in range(1, REDUCTION_STEPS + 1):
        if data is not None and (not p.reducible or (len(data) <= max_bytes
                                                     and count <= max_features)):
            break
        if data is None:  # surely over budget: never built in full
            keep = int(max_bytes / likely * 0.9)
        elif len(data) > max_bytes:
            keep = int(count * max_bytes / len(data) * 0.9)
        else:
            keep = count
        keep = max(1, min(keep, max_features))
        if _is_points(layer, z):
            p = plan(layer, tms_id, z, x, y, keep=-(-total // keep))
        else:
            p = plan(layer, tms_id, z, x, y, keep=keep, tolerance=float(step))
        row = await conn.fetchrow(p.sql, *p.args)
        data, count = (bytes(row[0]) if row[0] else b""), row[1] or 0
    return data or b""


async def tile(conn, layers: list[Layer], tms_id: str, z: int, x: int, y: int, *,
               max_bytes: int = 500_000, max_features: int = 20_000) -> bytes:
    """One tile holding every layer of ``layers`` (each named by its collection id): the
    concatenation of the layers' tiles, which is itself a valid MVT."""
    parts = [await layer_tile(conn, layer, tms_id, z, x, y, max_bytes=max_bytes,
                              max_features=max_features) for layer in layers]
    return b"".join(parts)


def naive_mvt_sql(layer: Layer) -> str:
    """The textbook query (per-row ``ST_Transform``, ``ST_TileEnvelope``) for ``$1 z, $2 x,
    $3 y``, used by the benchmark as the baseline."""
    g = ident(layer.geometry_column)
    cols = ", ".join(f"t.{ident(f)}" for f in visible_fields(layer))
    return (
        "WITH b AS (SELECT ST_TileEnvelope($1, $2, $3) AS env), "
        f"m AS (SELECT ST_AsMVTGeom(ST_Transform(t.{g}, 3857), b.env, {EXTENT}, {BUFFER}, "
        f"true) AS geom, {cols} FROM {source_ref(layer)} AS t, b "
        f"WHERE t.{g} && ST_Transform(b.env, 4326)) "
        f"SELECT ST_AsMVT(m.*, {literal(layer.id)}) FROM m")
