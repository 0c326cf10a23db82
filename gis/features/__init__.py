"""Features and queries: OGC API Features items, CQL2 filters, CRS handling, planners' queries."""

from gis.features.items import (
    GEOJSON_DECIMALS,
    ItemsQuery,
    check_limit,
    extent_sql,
    feature_collection,
    item_sql,
    items_sql,
    parse_cursor,
)

__all__ = ["GEOJSON_DECIMALS", "ItemsQuery", "check_limit", "extent_sql", "feature_collection",
           "item_sql", "items_sql", "parse_cursor"]
