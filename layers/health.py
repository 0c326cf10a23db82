"""Health facilities: hospitals, clinics, commune health stations, pharmacies."""

from layers.base import Field, Layer, Style

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
        Field("address", title="Address"),
        Field("opening_hours", title="Opening hours"),
        Field("osm_id", "int", title="OSM node id"),
        Field("ward_code", title="Ward GSO code"),
        Field("source", title="Source"),
    ),
    zoom=(10, 22),
    style=Style(fill="#e41a1c", stroke="#ffffff", symbol="cross", radius=6, label="name"),
    editable=True,
    keywords=("health",),
)
