"""Education facilities: kindergartens, schools, colleges, universities, libraries."""

from layers.base import Field, Layer, Style
from layers.common import ADDRESS, OSM_ID, SOURCE, WARD_CODE

EDUCATION = Layer(
    id="education",
    title="Education facilities",
    title_vi="Cơ sở giáo dục",
    description="Kindergartens, schools, colleges, universities and libraries.",
    table="education_facilities",
    geometry_type="Point",
    key=("osm_id",),
    fields=(
        Field("name", title="Name", title_vi="Tên", required=True),
        Field("kind", title="Kind", title_vi="Loại cơ sở", required=True,
              choice_titles=(("kindergarten", "Kindergarten", "Trường mầm non"),
                             ("primary", "Primary school", "Trường tiểu học"),
                             ("lower_secondary", "Lower secondary school",
                              "Trường trung học cơ sở"),
                             ("upper_secondary", "Upper secondary school",
                              "Trường trung học phổ thông"),
                             ("school", "School", "Trường học"),
                             ("college", "College", "Trường cao đẳng"),
                             ("university", "University", "Trường đại học"),
                             ("library", "Library", "Thư viện"))),
        ADDRESS,
        OSM_ID,
        WARD_CODE,
        SOURCE,
    ),
    zoom=(10, 22),
    style=Style(fill="#377eb8", stroke="#ffffff", symbol="square", radius=5, label="name"),
    editable=True,
    keywords=("education", "schools"),
)
