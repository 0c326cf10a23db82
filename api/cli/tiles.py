"""``huegis tiles``: seeding the tile cache and exporting PMTiles/MBTiles (issue: tiles)."""
