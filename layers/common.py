"""Fields shared by several layers, declared once."""

from layers.base import Field

ADDRESS = Field("address", title="Address")
OPENING_HOURS = Field("opening_hours", title="Opening hours")
OSM_ID = Field("osm_id", "int", title="OSM node id")
WARD_CODE = Field("ward_code", title="Ward GSO code", derive="ward")
SOURCE = Field("source", title="Source")
