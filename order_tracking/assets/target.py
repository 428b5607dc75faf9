from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset

from order_tracking import schema as s
from order_tracking.assets.common import ASSET_DEFAULTS
from order_tracking.assets.staged import staged_orders, table_schema
from order_tracking.checks import check_order_tracking, status_is_known, tracking_num_is_unique
from order_tracking.faults import crash_point
from order_tracking.resources.lakehouse import ORDER_TRACKING
from order_tracking.steps import merge_partition

# Dagster runs at most one step of this pool at a time (limit set in dagster.yaml): two MERGEs
# into one Delta table would only conflict and retry.
ORDER_TRACKING_WRITER_POOL = "order_tracking_writer"


class OrderTrackingConfig(Config):
    known_statuses: list[str] = list(s.KNOWN_STATUSES)


@asset(
    deps=[staged_orders],
    kinds={"spark", "delta"},
    check_specs=[tracking_num_is_unique, status_is_known],
    pool=ORDER_TRACKING_WRITER_POOL,
    **ASSET_DEFAULTS,
)
def order_tracking(context: AssetExecutionContext, config: OrderTrackingConfig) -> MaterializeResult:
    """One row per tracking_num: the newest status ever received, merged in day by day."""
    crash_point("before_merge")
    lakehouse = context.resources.lakehouse
    spark = context.resources.pyspark.spark_session
    # Day by day, oldest first, so each day's counts are its own; the result is the same in any
    # order (see transforms/merge.py).
    merged = [
        (day, merge_partition(spark, lakehouse, day, context.run.run_id))
        for day in context.partition_keys
    ]
    table = spark.read.format("delta").load(lakehouse.table_uri(ORDER_TRACKING))
    checks, table_rows = check_order_tracking(table, config.known_statuses)
    # The MERGE never deletes, so the table's size after each day is the final size less what
    # the later days inserted: no count per day.
    rows_after = table_rows
    for day, counts in reversed(merged):
        context.add_asset_metadata(
            {
                "dagster/row_count": rows_after,
                "inserted": counts.inserted,
                "updated": counts.updated,
                "skipped_as_stale": counts.skipped_as_stale,
                "source_rows": counts.source_rows,
                "delta_version": counts.version,
            },
            partition_key=day,
        )
        rows_after -= counts.inserted
    return MaterializeResult(
        metadata={
            "dagster/column_schema": table_schema(s.ORDER_TRACKING_SCHEMA),
            "table": MetadataValue.path(lakehouse.table_uri(ORDER_TRACKING)),
        },
        check_results=checks,
    )
