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
        Field("name", title="Name", title_vi="Tên", required=True),
        Field("kind", title="Kind", title_vi="Loại cơ sở", required=True,
              choice_titles=(("hospital", "Hospital", "Bệnh viện"),
                             ("clinic", "Clinic", "Phòng khám"),
                             ("health_station", "Commune health station", "Trạm y tế"),
                             ("doctors", "Doctor's practice", "Phòng khám bác sĩ tư"),
                             ("dentist", "Dentist", "Nha khoa"),
                             ("pharmacy", "Pharmacy", "Nhà thuốc"))),
        Field("beds", "int", title="Beds", title_vi="Số giường bệnh"),
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
