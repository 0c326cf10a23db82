"""Shared sample geometries, each with its CRS named."""

# Đại Nội (Imperial City), central Huế — EPSG:4326 lon/lat.
DAI_NOI_LONLAT = (107.5775, 16.4690)
# Hương river, near Trường Tiền bridge — EPSG:4326 lon/lat.
TRUONG_TIEN_LONLAT = (107.5905, 16.4637)
# Central Huế bounding box (CRS84: W, S, E, N).
CENTRAL_HUE_BBOX = (107.56, 16.44, 107.62, 16.48)
# A point far outside Huế (Hà Nội), EPSG:4326.
HANOI_LONLAT = (105.8542, 21.0285)
