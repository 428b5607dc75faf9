from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pyspark.sql import functions as F

from order_tracking import schema as s
from order_tracking.assets.common import ASSET_DEFAULTS
from order_tracking.assets.staged import staged_orders, table_schema
from order_tracking.checks import check_order_tracking, status_is_known, tracking_num_is_unique
from order_tracking.faults import crash_point, crash_while_reading
from order_tracking.resources.lakehouse import ORDER_TRACKING, STAGED_ORDERS
from order_tracking.transforms.merge import create_order_tracking_table, merge_into_order_tracking

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
    uri = lakehouse.table_uri(ORDER_TRACKING)

    target = create_order_tracking_table(spark, uri)
    staged = (
        spark.read.format("delta")
        .load(lakehouse.table_uri(STAGED_ORDERS))
        .where(F.col(s.PARTITION_DATE) == F.lit(context.partition_key).cast("date"))
        .select(*s.ORDER_TRACKING_SCHEMA.fieldNames())
    )
    staged = crash_while_reading(staged, "during_merge")
    counts = merge_into_order_tracking(spark, target, staged, commit_tag=context.run.run_id)
    checks, table_rows = check_order_tracking(
        spark.read.format("delta").load(uri), config.known_statuses
    )
    return MaterializeResult(
        metadata={
            "dagster/row_count": table_rows,
            "inserted": counts.inserted,
            "updated": counts.updated,
            "skipped_as_stale": counts.skipped_as_stale,
            "source_rows": counts.source_rows,
            "delta_version": counts.version,
            "dagster/column_schema": table_schema(s.ORDER_TRACKING_SCHEMA),
            "table": MetadataValue.path(uri),
        },
        check_results=checks,
    )
