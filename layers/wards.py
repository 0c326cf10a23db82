"""Administrative units: the 40 wards/communes of Huế City (two-level government, 2025)."""

from layers.base import Field, Generalize, Layer, Style

WARDS = Layer(
    id="wards",
    title="Wards and communes",
    title_vi="Phường, xã",
    description="The 40 wards (phường) and communes (xã) of Huế City since 1 July 2025, "
    "with their official GSO codes.",
    table="wards",  # a view over admin_units (level = 'ward')
    geometry_type="MultiPolygon",
    id_column="gso_code",
    key=("gso_code",),
    fields=(
        Field("gso_code", title="GSO code", title_vi="Mã đơn vị hành chính", required=True),
        Field("name", title="Name", title_vi="Tên", required=True),
        Field("short_name", title="Short name", title_vi="Tên gọn"),
        Field("unit_type", title="Unit type", title_vi="Loại đơn vị hành chính",
              choice_titles=(("Phường", "Ward", "Phường"), ("Xã", "Commune", "Xã"))),
        Field("area_km2", "float", title="Area (km²)", title_vi="Diện tích (km²)"),
        Field("population", "int", title="Population", title_vi="Dân số"),
        Field("effective_from", "date", title="Effective from", title_vi="Có hiệu lực từ"),
    ),
    zoom=(6, 22),
    style=Style(fill="#ffffff", fill_opacity=0.05, stroke="#6a3d9a", stroke_width=1.5,
                label="short_name", outline_on_top=True),
    importable=False,
    keywords=("administrative", "boundaries"),
    generalize=Generalize(6, "wards", 6),
)
