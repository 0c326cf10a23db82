"""Construction order: building permits and detected violations, with footprints."""

from layers.base import Field, Layer, Style
from layers.common import ADDRESS, SOURCE, WARD_CODE

CONSTRUCTION = Layer(
    id="construction",
    title="Construction permits and violations",
    title_vi="Cấp phép và vi phạm xây dựng",
    description="Building permits (giấy phép xây dựng) and construction-order violations "
    "with their footprint polygons.",
    table="construction",
    geometry_type="MultiPolygon",
    key=("record_no",),
    fields=(
        Field("record_no", title="Permit or case number", required=True),
        Field("kind", title="Kind", choices=("permit", "violation"), required=True),
        Field("work_type", title="Type of works",
              choices=("new_build", "renovation", "extension", "demolition", "fence")),
        Field("status", title="Status",
              choices=("submitted", "approved", "rejected", "under_construction", "completed",
                       "expired", "detected", "fined", "remedied", "demolished")),
        Field("applicant_type", title="Applicant type",
              choices=("household", "organisation", "state")),
        Field("issued_on", "date", title="Issued / detected on"),
        Field("expires_on", "date", title="Expires on"),
        Field("floors", "int", title="Floors"),
        Field("footprint_m2", "float", title="Footprint (m²)", derive="area"),
        ADDRESS,
        WARD_CODE,
        Field("inspector_notes", title="Inspector notes", public=False,
              visible_to=("inspector",)),
        SOURCE,
    ),
    zoom=(14, 22),
    style=Style(fill="#fdb462", stroke="#e31a1c", stroke_width=1.0, label="record_no",
                classify="kind", classes=(("permit", "#fdb462"), ("violation", "#e31a1c"))),
    editable=True,
    temporal="issued_on",
    keywords=("construction", "permits", "violations"),
)
