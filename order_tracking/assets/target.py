from dagster import AssetExecutionContext, AssetKey, AssetSpec, Config, MaterializeResult, MetadataValue
from pyspark.sql import SparkSession

from order_tracking.assets.staged import STAGED, table_schema
from order_tracking.catalog import ORDER_TRACKING
from order_tracking.checks import check_order_tracking
from order_tracking.daily import merge_day
from order_tracking.delta import SourceSummary
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.schema import KNOWN_STATUSES

TRACKING = AssetKey(ORDER_TRACKING.name)

order_tracking_spec = AssetSpec(
    TRACKING,
    deps=[STAGED],
    description="One row per tracking_num: the newest status ever received, merged in day by day.",
    kinds={"spark", "delta"},
)


class OrderTrackingConfig(Config):
    known_statuses: list[str] = list(KNOWN_STATUSES)


def materialize_order_tracking(
    context: AssetExecutionContext,
    config: OrderTrackingConfig,
    spark: SparkSession,
    lakehouse: Lakehouse,
    staged_now: dict[str, SourceSummary],
) -> MaterializeResult:
    """MERGE each day of the run. `staged_now`: per day, what this step's staging just wrote (when
    staged_orders was materialized in the same step)."""
    # Day by day, oldest first, so each day's counts are its own; the result is the same in any
    # order (see transforms/sequence.py).
    merged = []
    for day in context.partition_keys:
        counts = merge_day(spark, lakehouse, day, context.run.run_id, staged_now.get(day))
        context.log.info(
            f"{day} order_tracking: {counts.inserted} inserted, {counts.updated} updated,"
            f" {counts.skipped_as_stale} stale"
        )
        merged.append((day, counts))
    table = spark.read.format("delta").load(lakehouse.table_uri(ORDER_TRACKING))
    checks, table_rows = check_order_tracking(table, config.known_statuses)
    # The MERGE never deletes, so the table's size after each day is the final size less what
    # the later days inserted: no count per day.
    rows_after = table_rows
    for day, counts in reversed(merged):
        context.add_asset_metadata(
            {"dagster/row_count": rows_after, **counts.metadata()}, asset_key=TRACKING, partition_key=day
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
