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
STATUS_TITLES = {
    "received": ("Received", "Đã tiếp nhận"),
    "assigned": ("Assigned", "Đã chuyển xử lý"),
    "in_progress": ("In progress", "Đang xử lý"),
    "resolved": ("Resolved", "Đã xử lý xong"),
    "rejected": ("Rejected", "Từ chối xử lý"),
    "duplicate": ("Duplicate", "Trùng lặp"),
    "reopened": ("Reopened", "Mở lại"),
}
INCIDENT_STATUSES = tuple(STATUS_TITLES)

INCIDENTS = Layer(
    id="incidents",
    title="Citizen incident reports",
    title_vi="Phản ánh hiện trường",
    description="Geolocated field reports filed by residents, routed to their ward.",
    table="incidents",
    geometry_type="Point",
    key=("ref",),
    fields=(
        Field("ref", title="Reference", title_vi="Mã phản ánh", required=True),
        Field("category", title="Category", title_vi="Lĩnh vực", required=True,
              choice_titles=tuple((k, en, vi) for k, (en, vi) in INCIDENT_CATEGORIES.items())),
        Field("description", title="Description", title_vi="Nội dung phản ánh"),
        Field("status", title="Status", title_vi="Trạng thái xử lý",
              choice_titles=tuple((k, en, vi) for k, (en, vi) in STATUS_TITLES.items())),
        Field("priority", title="Priority", title_vi="Mức độ ưu tiên",
              choice_titles=(("normal", "Normal", "Bình thường"),
                             ("urgent", "Urgent", "Khẩn cấp"))),
        Field("channel", title="Channel", title_vi="Kênh tiếp nhận",
              choice_titles=(("app", "Mobile app", "Ứng dụng di động"),
                             ("hotline", "Hotline", "Đường dây nóng"),
                             ("web", "Web portal", "Cổng thông tin điện tử"),
                             ("open311", "Open311", "Open311"))),
        ADDRESS,
        WARD_CODE,
        Field("created_at", "datetime", title="Created", title_vi="Thời điểm tiếp nhận"),
        Field("updated_at", "datetime", title="Updated", title_vi="Cập nhật lúc"),
        Field("resolved_at", "datetime", title="Resolved", title_vi="Thời điểm xử lý xong"),
        Field("sla_due_at", "datetime", title="SLA due", title_vi="Hạn xử lý"),
        Field("rating", "int", title="Satisfaction (1–5)", title_vi="Mức độ hài lòng (1–5)"),
        Field("reporter_name", title="Reporter name", title_vi="Họ tên người phản ánh",
              public=False),
        Field("reporter_phone", title="Reporter phone", title_vi="Số điện thoại người phản ánh",
              public=False),
        Field("reporter_email", title="Reporter email", title_vi="Email người phản ánh",
              public=False),
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
                          marks="incident_marks",
                          extra_fields=(("count", "Number"), ("category", "String"))),
)
