"""Features and queries: OGC API Features items, CQL2 filters, CRS handling, planners' queries."""

from gis.features.items import (
    GEOJSON_DECIMALS,
    ItemsQuery,
    check_limit,
    check_offset,
    count_sql,
    explain_sql,
    extent_sql,
    feature_collection,
    feature_id,
    item_sql,
    items_sql,
    parse_cursor,
    plan_rows,
    stream_sql,
    temporal_extent_sql,
)

__all__ = ["GEOJSON_DECIMALS", "ItemsQuery", "check_limit", "check_offset", "count_sql",
           "explain_sql", "extent_sql", "feature_collection", "feature_id", "item_sql",
           "items_sql", "parse_cursor", "plan_rows", "stream_sql", "temporal_extent_sql"]
