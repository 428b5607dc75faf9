"""Compaction of order_tracking: every MERGE adds a few files holding the day's rows, spread over
the whole range of keys in flight, and marks the replaced rows of older files with deletion
vectors. Day after day the table collects small files whose tracking_num ranges overlap, so the
key-range bound of the MERGE skips less and less and every MERGE reads more. OPTIMIZE on a table
clustered by tracking_num rewrites them into few files with narrow key ranges (delta.compact).
It changes no row: the data, and every reader's result, stay the same."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from order_tracking.assets.common import OWNERS
from order_tracking.assets.pipeline import ORDER_TRACKING_WRITER_POOL
from order_tracking.assets.target import TRACKING
from order_tracking.catalog import ORDER_TRACKING
from order_tracking.delta import compact
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.spark import SparkResource, StepLauncherResource


@asset(
    deps=[TRACKING],
    kinds={"spark", "delta"},
    # OPTIMIZE rewrites the files the daily MERGE updates: taking turns with it in the writers'
    # pool avoids a conflict that one of the two would have to retry.
    pool=ORDER_TRACKING_WRITER_POOL,
    # Not the pipeline's group: it is not partitioned and not part of a day's run.
    group_name="order_tracking_compaction",
    owners=OWNERS,
)
def order_tracking_compaction(
    context: AssetExecutionContext,
    pyspark: SparkResource,
    lakehouse: Lakehouse,
    step_launcher: StepLauncherResource,
) -> MaterializeResult:
    """order_tracking's files compacted and clustered by tracking_num (Delta OPTIMIZE); no row changes."""
    spark, uri = pyspark.spark_session, lakehouse.table_uri(ORDER_TRACKING)
    # Created if missing: the schedule may fire before the first day is merged.
    done = compact(spark, ORDER_TRACKING.ensure(spark, uri))
    context.log.info(f"order_tracking: {done.before.files} file(s) compacted into {done.after.files}")
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
            "table": MetadataValue.path(uri),
        }
    )
