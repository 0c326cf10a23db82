"""Land parcels (thửa đất) with their land-use class from the Vietnamese land classification."""

from layers.base import Field, Generalize, Layer, Style
from layers.common import ADDRESS, SOURCE, WARD_CODE

# Land-use codes (Luật Đất đai, Thông tư 08/2024/TT-BTNMT) used in Huế's cadastral data.
LAND_USE = {
    "ODT": ("Urban residential land", "Đất ở tại đô thị", "#f4a582"),
    "ONT": ("Rural residential land", "Đất ở tại nông thôn", "#fddbc7"),
    "CLN": ("Perennial crop land", "Đất trồng cây lâu năm", "#a6d96a"),
    "LUC": ("Specialised paddy land", "Đất chuyên trồng lúa", "#ffffbf"),
    "HNK": ("Other annual crop land", "Đất trồng cây hằng năm khác", "#fee08b"),
    "TMD": ("Commercial and service land", "Đất thương mại, dịch vụ", "#d6604d"),
    "SKC": ("Non-agricultural production land", "Đất cơ sở sản xuất phi nông nghiệp", "#b2abd2"),
    "DGT": ("Transport land", "Đất giao thông", "#bababa"),
    "DGD": ("Education facility land", "Đất xây dựng cơ sở giáo dục", "#92c5de"),
    "DYT": ("Health facility land", "Đất xây dựng cơ sở y tế", "#4393c3"),
    "DVH": ("Culture facility land", "Đất xây dựng cơ sở văn hóa", "#c51b7d"),
    "TON": ("Religious land", "Đất tôn giáo", "#de77ae"),
    "DKV": ("Public recreation land", "Đất khu vui chơi, giải trí công cộng", "#1a9850"),
    "NTD": ("Cemetery land", "Đất nghĩa trang", "#878787"),
    "SON": ("Rivers and streams", "Đất sông, ngòi, kênh, rạch, suối", "#9ecae1"),
}

PARCELS = Layer(
    id="parcels",
    title="Land parcels",
    title_vi="Thửa đất",
    description="Cadastral land parcels with map sheet, parcel number and land-use class.",
    table="land_parcels",
    geometry_type="MultiPolygon",
    key=("ward_code", "map_sheet_no", "parcel_no"),
    fields=(
        Field("parcel_no", title="Parcel number", title_vi="Số thửa", required=True),
        Field("map_sheet_no", title="Map sheet number", title_vi="Số tờ bản đồ", required=True),
        Field("land_use", title="Land-use code", title_vi="Mục đích sử dụng đất", required=True,
              choice_titles=tuple((k, en, vi) for k, (en, vi, _) in LAND_USE.items())),
        Field("area_m2", "float", title="Area (m²)", title_vi="Diện tích (m²)", derive="area"),
        Field("zoning", title="Zoning", title_vi="Phân khu quy hoạch"),
        Field("owner_type", title="Owner type", title_vi="Loại chủ sử dụng",
              choice_titles=(("household", "Household or individual", "Hộ gia đình, cá nhân"),
                             ("organisation", "Organisation", "Tổ chức"),
                             ("state", "State", "Nhà nước"),
                             ("religious", "Religious establishment", "Cơ sở tôn giáo"),
                             ("community", "Residential community", "Cộng đồng dân cư"))),
        Field("owner_name", title="Owner name", title_vi="Chủ sử dụng", public=False,
              visible_to=("planner",)),
        WARD_CODE,
        ADDRESS,
        SOURCE,
    ),
    zoom=(14, 22),
    style=Style(fill="#f2d49b", stroke="#a0522d", stroke_width=0.5, label="parcel_no",
                classify="land_use", classes=tuple((k, v[2]) for k, v in LAND_USE.items()),
                label_minzoom=17),  # thousands of parcel numbers are unreadable below
    editable=True,
    keywords=("cadastre", "land use"),
    # Up to z17 tiles carry what the map draws (the land use, from z17 the parcel number)
    # and the id: thousands of parcels each, whose ten attributes cost more to encode than
    # their shapes; the web map's popup reads the rest by id. From z18 every public field.
    generalize=Generalize(11, "blocks", 14, lean_until=18, extra_fields=(
        ("land_use", "String"), ("parcels", "Number"), ("area_m2", "Number"))),
)
