"""Typed declarations of the layer catalog.

A layer is described once, as data. Storage (the migration mirrors these fields), OGC API
Features, vector tiles, PNG styles, privacy and import/export all read these declarations;
nothing layer-specific lives in generic code. No SQL and no web framework here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FieldType = Literal["text", "int", "float", "date", "datetime", "bool"]
GeometryType = Literal["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                       "MultiPolygon"]


@dataclass(frozen=True)
class Field:
    """One attribute column of a vector layer.

    ``public=False`` marks personal or internal data: it never leaves through public features,
    tiles or exports. ``choices`` lists the allowed values (validated on import).
    ``visible_to`` names the roles entitled to read a private field (admin always is).
    ``required`` fields must be present in imported rows. ``derive`` names what the platform
    computes from the geometry when a row does not give it: ``"area"`` (m², measured in
    VN-2000 / TM-3 107-00) or ``"ward"`` (GSO code of the ward containing the feature).
    """

    name: str
    type: FieldType = "text"
    public: bool = True
    title: str | None = None
    choices: tuple[str, ...] | None = None
    required: bool = False
    derive: Literal["area", "ward"] | None = None
    # Roles entitled to read a private field (admin always is), e.g. planners see owners.
    visible_to: tuple[str, ...] = ()
    # The title in Vietnamese (the interface's default language).
    title_vi: str | None = None
    # What each of ``choices`` means: (value, English, Vietnamese); they are the choices
    # when ``choices`` is not given.
    choice_titles: tuple[tuple[str, str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.choices is None and self.choice_titles:
            object.__setattr__(self, "choices", tuple(v for v, _, _ in self.choice_titles))

    def title_in(self, lang: str) -> str:
        """The field's title in ``lang`` (``"vi"`` or ``"en"``), else its name.

        >>> Field("land_use", title="Land-use code", title_vi="Mục đích sử dụng đất").title_in("vi")
        'Mục đích sử dụng đất'
        """
        return (self.title_vi if lang == "vi" else self.title) or self.title or self.name

    def choice_title(self, value: str, lang: str) -> str:
        """What a value of ``choices`` means in ``lang``; the value itself when undeclared.

        >>> Field("kind", choice_titles=(("permit", "Permit", "Giấy phép"),)).choice_title(
        ...     "permit", "vi")
        'Giấy phép'
        """
        for v, en, vi in self.choice_titles:
            if v == value:
                return vi if lang == "vi" else en
        return value


@dataclass(frozen=True)
class Style:
    """Cartographic style, read by the PNG renderer, the web map and its legend."""

    fill: str | None = None
    stroke: str | None = None
    stroke_width: float = 1.0
    fill_opacity: float = 0.6
    symbol: str | None = None  # point marker name (circle, square, triangle, star, cross)
    radius: float = 5.0
    label: str | None = None  # field used for labels
    # Optional per-value colours for one field (a categorised legend), e.g. land use.
    classify: str | None = None
    classes: tuple[tuple[str, str], ...] = ()
    # First zoom of the labels (default: the detail zoom for areas, two later for points).
    label_minzoom: int | None = None
    # Outlines drawn above the other layers of a composite map (e.g. ward borders).
    outline_on_top: bool = False


GeneralizeMode = Literal["blocks", "clusters", "wards"]


@dataclass(frozen=True)
class Generalize:
    """How a layer extends below its detail zoom instead of vanishing (vector tiles).

    ``mode`` names the generalized view kept by the database (migration 0005): ``blocks``
    (polygons dissolved by the style's class field), ``clusters`` (points clustered per tile,
    with a count and the dominant class) or ``wards`` (simplified per zoom, at every zoom).
    ``late_fields`` leaves long text out of tiles below a zoom: ``(field, first zoom)``;
    ``lean_until``: below this zoom, detail tiles carry only the fields the map draws with
    (the style's class field, and its label field once labels show) besides the feature id;
    clients read the rest by id (the web map's popup does). Encoding attributes is most of a
    dense tile's cost. ``extra_fields`` are the ``(name, type)`` of what the generalized
    view carries. ``marks`` (clustered points): the table keeping, per grid cell, the
    newest point with the fields the style draws with, from which rendered maps draw the
    detail markers instead of thinning every point per image (migration 0012).
    """

    minzoom: int
    mode: GeneralizeMode
    until: int  # first zoom drawn in detail
    late_fields: tuple[tuple[str, int], ...] = ()
    lean_until: int | None = None
    marks: str | None = None
    extra_fields: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Layer:
    """A vector layer (an OGC API collection) backed by one PostGIS table or view."""

    id: str
    title: str
    title_vi: str
    table: str
    geometry_type: GeometryType
    fields: tuple[Field, ...]
    id_column: str = "id"
    geometry_column: str = "geom"
    schema: str = "public"
    description: str = ""
    # Natural key (fields that identify a row across imports); duplicates are rejected.
    key: tuple[str, ...] = ()
    zoom: tuple[int, int] = (0, 22)
    style: Style = field(default_factory=Style)
    editable: bool = False
    # Whether ``huegis import`` may load into this layer.
    importable: bool = True
    # Datetime field for temporal queries (OGC ``datetime``), if any.
    temporal: str | None = None
    keywords: tuple[str, ...] = ()
    # The generalized view shown below the detail zoom (None: the layer simply starts there).
    generalize: Generalize | None = None
    # A view of the table as the public may see it (migration 0008: locations of sensitive
    # reports rounded to about 100 m, their addresses left out). Every public reader (features,
    # queries, tiles, maps, WMS, exports, folium) reads it instead of ``table``, for output and
    # for filtering alike, so that no bbox or distance filter can probe an exact location;
    # only admins read the table itself through the generic paths.
    public_view: str | None = None

    kind: Literal["vector"] = "vector"

    @property
    def public_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.public)

    @property
    def private_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if not f.public)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def has_field(self, name: str) -> bool:
        return any(f.name == name for f in self.fields)

    @property
    def is_polygonal(self) -> bool:
        return self.geometry_type in ("Polygon", "MultiPolygon")


@dataclass(frozen=True)
class RasterLayer:
    """A raster layer: a Cloud-Optimized GeoTIFF registered in ``raster_datasets``."""

    id: str
    title: str
    title_vi: str
    units: str
    nodata: float
    filename: str  # file name of the COG inside the raster directory
    description: str = ""
    colormap: str = "viridis"
    rescale: tuple[float, float] = (0.0, 1.0)
    keywords: tuple[str, ...] = ()

    kind: Literal["raster"] = "raster"
