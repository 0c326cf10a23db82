"""Citizen incident reports (phản ánh hiện trường) with their routing ward and status.

The reporter's name, phone and email are private: they never leave through public features,
tiles or exports. Inspectors read them only through the ward-scoped incidents API
(``/incidents``), so the generic paths (features, queries, exports) show them to admins
alone. The event history lives in ``incident_events`` (not a map layer).
"""

from layers.base import Field, Generalize, Layer, Style
from layers.common import ADDRESS, SOURCE, WARD_CODE

INCIDENT_CATEGORIES = {
    "roads": ("Roads and pavements", "Giao thông, đường sá"),
    "lighting": ("Street lighting", "Chiếu sáng công cộng"),
    "waste": ("Waste and sanitation", "Rác thải, vệ sinh môi trường"),
    "drainage": ("Drainage and flooding", "Thoát nước, ngập úng"),
    "trees": ("Trees and green space", "Cây xanh"),
    "construction": ("Construction order", "Trật tự xây dựng"),
    "noise": ("Noise", "Tiếng ồn"),
    "public_order": ("Public order", "An ninh trật tự"),
}
# Categories whose locations the public sees only rounded to about 100 m, with no address
# (migration 0008 stores that location; staff see the exact one).
SENSITIVE_CATEGORIES = ("public_order",)
INCIDENT_STATUSES = ("received", "assigned", "in_progress", "resolved", "rejected", "duplicate",
                     "reopened")

INCIDENTS = Layer(
    id="incidents",
    title="Citizen incident reports",
    title_vi="Phản ánh hiện trường",
    description="Geolocated field reports filed by residents, routed to their ward.",
    table="incidents",
    geometry_type="Point",
    key=("ref",),
    fields=(
        Field("ref", title="Reference", required=True),
        Field("category", title="Category", choices=tuple(INCIDENT_CATEGORIES), required=True),
        Field("description", title="Description"),
        Field("status", title="Status", choices=INCIDENT_STATUSES),
        Field("priority", title="Priority", choices=("normal", "urgent")),
        Field("channel", title="Channel", choices=("app", "hotline", "web", "open311")),
        ADDRESS,
        WARD_CODE,
        Field("created_at", "datetime", title="Created"),
        Field("updated_at", "datetime", title="Updated"),
        Field("resolved_at", "datetime", title="Resolved"),
        Field("sla_due_at", "datetime", title="SLA due"),
        Field("rating", "int", title="Satisfaction (1–5)"),
        Field("reporter_name", title="Reporter name", public=False),
        Field("reporter_phone", title="Reporter phone", public=False),
        Field("reporter_email", title="Reporter email", public=False),
        SOURCE,
    ),
    zoom=(12, 22),  # clustering at lower zooms comes with the tiles work
    style=Style(fill="#ff7f00", stroke="#ffffff", symbol="circle", radius=4,
                classify="status",
                classes=(("received", "#e31a1c"), ("in_progress", "#ff7f00"),
                         ("resolved", "#33a02c"))),
    editable=False,
    temporal="created_at",
    keywords=("incidents", "citizen reports"),
    public_view="incidents_public",
    generalize=Generalize(6, "clusters", 15, late_fields=(("description", 17),),
                          extra_fields=(("count", "Number"), ("category", "String"))),
)
