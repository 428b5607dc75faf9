from dagster import AssetExecutionContext, AssetKey, AssetSpec, Config, MaterializeResult, MetadataValue

from order_tracking import schema as s
from order_tracking.assets.staged import STAGED, table_schema
from order_tracking.checks import check_order_tracking
from order_tracking.faults import crash_point
from order_tracking.catalog import ORDER_TRACKING
from order_tracking.steps import merge_partition
from order_tracking.transforms.merge import SourceSummary

TRACKING = AssetKey(ORDER_TRACKING.name)

order_tracking_spec = AssetSpec(
    TRACKING,
    deps=[STAGED],
    description="One row per tracking_num: the newest status ever received, merged in day by day.",
    kinds={"spark", "delta"},
)


class OrderTrackingConfig(Config):
    known_statuses: list[str] = list(s.KNOWN_STATUSES)


def materialize_order_tracking(
    context: AssetExecutionContext,
    config: OrderTrackingConfig,
    staged_now: dict[str, SourceSummary] | None = None,
) -> MaterializeResult:
    """MERGE each day of the run. `staged_now`: per day, what this step's staging just wrote (when
    staged_orders was materialized in the same step)."""
    crash_point("before_merge")
    lakehouse = context.resources.lakehouse
    spark = context.resources.pyspark.spark_session
    staged = staged_now or {}
    # Day by day, oldest first, so each day's counts are its own; the result is the same in any
    # order (see transforms/merge.py).
    merged = [
        (day, merge_partition(spark, lakehouse, day, context.run.run_id, staged.get(day)))
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
            asset_key=TRACKING,
            partition_key=day,
        )
        rows_after -= counts.inserted
    return MaterializeResult(
        asset_key=TRACKING,
        metadata={
            "dagster/column_schema": table_schema(ORDER_TRACKING.schema),
            "table": MetadataValue.path(lakehouse.table_uri(ORDER_TRACKING)),
        },
        check_results=checks,
    )
