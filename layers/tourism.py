"""Tourism points of interest: heritage, attractions, accommodation, restaurants."""

from layers.base import Field, Layer, Style
from layers.common import ADDRESS, OPENING_HOURS, OSM_ID, SOURCE, WARD_CODE

TOURISM = Layer(
    id="tourism",
    title="Tourism points of interest",
    title_vi="Điểm du lịch",
    description="Heritage sites, attractions, museums, accommodation and restaurants.",
    table="tourism_pois",
    geometry_type="Point",
    key=("osm_id",),
    fields=(
        Field("name", title="Name", required=True),
        Field("name_en", title="Name (English)"),
        Field("category", title="Category", required=True,
              choices=("heritage", "attraction", "museum", "viewpoint", "artwork", "hotel",
                       "guest_house", "hostel", "restaurant", "cafe", "information", "other")),
        ADDRESS,
        OPENING_HOURS,
        OSM_ID,
        WARD_CODE,
        SOURCE,
    ),
    zoom=(10, 22),
    style=Style(fill="#e7298a", stroke="#ffffff", symbol="star", radius=6, label="name",
                classify="category",
                classes=(("heritage", "#8c2d04"), ("attraction", "#e7298a"),
                         ("museum", "#7570b3"), ("hotel", "#1b9e77"),
                         ("restaurant", "#d95f02"))),
    editable=True,
    keywords=("tourism", "heritage"),
)
