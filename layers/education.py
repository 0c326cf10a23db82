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
        Field("name", title="Name", required=True),
        Field("kind", title="Kind", required=True,
              choices=("kindergarten", "primary", "lower_secondary", "upper_secondary",
                       "school", "college", "university", "library")),
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
