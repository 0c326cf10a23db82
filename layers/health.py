"""Health facilities: hospitals, clinics, commune health stations, pharmacies."""

from layers.base import Field, Layer, Style
from layers.common import ADDRESS, OPENING_HOURS, OSM_ID, SOURCE, WARD_CODE

HEALTH = Layer(
    id="health",
    title="Health facilities",
    title_vi="Cơ sở y tế",
    description="Hospitals, clinics, commune health stations (trạm y tế), doctors and pharmacies.",
    table="health_facilities",
    geometry_type="Point",
    key=("osm_id",),
    fields=(
        Field("name", title="Name", required=True),
        Field("kind", title="Kind", required=True,
              choices=("hospital", "clinic", "health_station", "doctors", "dentist",
                       "pharmacy")),
        Field("beds", "int", title="Beds"),
        ADDRESS,
        OPENING_HOURS,
        OSM_ID,
        WARD_CODE,
        SOURCE,
    ),
    zoom=(10, 22),
    style=Style(fill="#e41a1c", stroke="#ffffff", symbol="cross", radius=6, label="name"),
    editable=True,
    keywords=("health",),
)
