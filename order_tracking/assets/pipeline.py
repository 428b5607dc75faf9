"""The day's three assets, materialized by one step.

A run of the day (the sensor's, or a backfill's range) is one step that lands, stages and merges:
on Databricks that is one Databricks run and so one cluster start, instead of one per asset. The
assets stay three in the graph, each with its own metadata, checks and history, and any subset
can be materialized on its own (the step then does only that part). What it costs: a failed step
is retried whole (each part is idempotent: a rerun of the raw copy finds its files recorded, a
restage replaces the day, a re-MERGE changes nothing), and runs of different days take turns at
the whole step rather than at each write.
"""

from collections.abc import Iterator

from dagster import AssetExecutionContext, MaterializeResult, multi_asset

from order_tracking.assets.common import DAILY_ASSET_DEFAULTS, OWNERS
from order_tracking.assets.raw import RAW_ORDER_FILES, materialize_raw_order_files, raw_order_files_spec
from order_tracking.assets.staged import STAGED, materialize_staged_orders, staged_orders_spec
from order_tracking.assets.target import (
    TRACKING,
    OrderTrackingConfig,
    materialize_order_tracking,
    order_tracking_spec,
)
from order_tracking.checks import (
    partition_has_no_quarantined_rows,
    status_is_known,
    tracking_num_is_unique,
)
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.landing import LandingZone
from order_tracking.resources.spark import SparkResource, StepLauncherResource

# Dagster runs at most one step of this pool at a time (limit set in dagster.yaml): the day's
# raw copy and ledger, its staging and its MERGE into one Delta table would otherwise meet another
# run's, only to conflict and retry. The compaction asset takes turns in it too.
ORDER_TRACKING_WRITER_POOL = "order_tracking_writer"

PIPELINE_SPECS = [
    spec.replace_attributes(owners=OWNERS, skippable=True)
    for spec in (raw_order_files_spec, staged_orders_spec, order_tracking_spec)
]
# The day's three assets by name, in graph order: the selection of a day's run.
DAILY_ASSETS = [spec.key.to_user_string() for spec in PIPELINE_SPECS]


@multi_asset(
    name="order_tracking_pipeline",
    specs=PIPELINE_SPECS,
    check_specs=[partition_has_no_quarantined_rows, tracking_num_is_unique, status_is_known],
    can_subset=True,
    pool=ORDER_TRACKING_WRITER_POOL,
    **DAILY_ASSET_DEFAULTS,
)
def order_tracking_pipeline(
    context: AssetExecutionContext,
    config: OrderTrackingConfig,
    pyspark: SparkResource,
    landing: LandingZone,
    lakehouse: Lakehouse,
    step_launcher: StepLauncherResource,
) -> Iterator[MaterializeResult]:
    """Land, stage and merge the run's day(s), for the selected assets, in graph order."""
    spark, selected = pyspark.spark_session, context.selected_asset_keys
    if RAW_ORDER_FILES in selected:
        yield materialize_raw_order_files(context, spark, landing, lakehouse)
    staged_now = {}
    if STAGED in selected:
        result, reports = materialize_staged_orders(context, spark, lakehouse)
        staged_now = {day: report.staged for day, report in reports.items()}
        yield result
    if TRACKING in selected:
        yield materialize_order_tracking(context, config, spark, lakehouse, staged_now)
