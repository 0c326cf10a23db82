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
        Field("name", title="Name", title_vi="Tên", required=True),
        Field("name_en", title="Name (English)", title_vi="Tên tiếng Anh"),
        Field("category", title="Category", title_vi="Loại hình", required=True,
              choice_titles=(("heritage", "Heritage site", "Di tích"),
                             ("attraction", "Attraction", "Điểm tham quan"),
                             ("museum", "Museum", "Bảo tàng"),
                             ("viewpoint", "Viewpoint", "Điểm ngắm cảnh"),
                             ("artwork", "Artwork", "Công trình nghệ thuật"),
                             ("hotel", "Hotel", "Khách sạn"),
                             ("guest_house", "Guest house", "Nhà nghỉ"),
                             ("hostel", "Hostel", "Nhà nghỉ tập thể (hostel)"),
                             ("restaurant", "Restaurant", "Nhà hàng"),
                             ("cafe", "Café", "Quán cà phê"),
                             ("information", "Tourist information", "Điểm thông tin du lịch"),
                             ("other", "Other", "Khác"))),
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
