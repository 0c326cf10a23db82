"""``huegis map``: standalone HTML maps (folium) of a layer or a query (issue: web map)."""
