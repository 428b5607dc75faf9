from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from order_tracking.assets.common import OWNERS, RESOURCE_KEYS
from order_tracking.assets.pipeline import ORDER_TRACKING_WRITER_POOL
from order_tracking.assets.target import TRACKING
from order_tracking.maintenance import compact
from order_tracking.catalog import ORDER_TRACKING


@asset(
    deps=[TRACKING],
    kinds={"spark", "delta"},
    # OPTIMIZE rewrites the files the daily MERGE updates: taking turns with it in the writers'
    # pool avoids a conflict that one of the two would have to retry.
    pool=ORDER_TRACKING_WRITER_POOL,
    # Not the pipeline's group: it is not partitioned and not part of a day's run.
    group_name="order_tracking_maintenance",
    owners=OWNERS,
    required_resource_keys=RESOURCE_KEYS,
)
def order_tracking_layout(context: AssetExecutionContext) -> MaterializeResult:
    """order_tracking's files compacted and clustered by tracking_num (Delta OPTIMIZE); no row changes."""
    lakehouse = context.resources.lakehouse
    spark = context.resources.pyspark.spark_session
    # Created if missing: the schedule may fire before the first day is merged.
    done = compact(spark, ORDER_TRACKING.ensure(spark, lakehouse.table_uri(ORDER_TRACKING)))
    return MaterializeResult(
        metadata={
            "files_before": done.before.files,
            "files_after": done.after.files,
            "bytes_before": MetadataValue.int(done.before.bytes),
            "bytes_after": MetadataValue.int(done.after.bytes),
            "files_removed": done.files_removed,
            "files_added": done.files_added,
            "deletion_vectors_removed": done.deletion_vectors_removed,
            "delta_version": done.version,
            "table": MetadataValue.path(lakehouse.table_uri(ORDER_TRACKING)),
        }
    )
