"""Fields shared by several layers, declared once."""

from layers.base import Field

ADDRESS = Field("address", title="Address", title_vi="Địa chỉ")
OPENING_HOURS = Field("opening_hours", title="Opening hours", title_vi="Giờ mở cửa")
OSM_ID = Field("osm_id", "int", title="OSM node id", title_vi="Mã đối tượng OSM")
WARD_CODE = Field("ward_code", title="Ward GSO code", title_vi="Mã phường/xã",
                  derive="ward")
SOURCE = Field("source", title="Source", title_vi="Nguồn dữ liệu")
