"""The insight assets: every order's status history, and the daily status mix and KPIs.

One step after the day's merge, in a writers' pool of its own (the history MERGE and the figures'
writes do not touch the pipeline's tables, so a day's insight step and the next day's pipeline
step need not wait for each other). On Databricks it is a second Databricks run of the Dagster
run (docs/insights.md says what that costs). Any subset can be materialized alone; the figures
alone restate days from the history as it stands (the restatement sensor's runs).
"""

from collections.abc import Iterator

from dagster import AssetExecutionContext, AssetKey, AssetSpec, MaterializeResult, MetadataValue, multi_asset

from order_tracking.assets.common import DAILY_ASSET_DEFAULTS, OWNERS
from order_tracking.assets.staged import STAGED, table_schema
from order_tracking.assets.target import TRACKING
from order_tracking.catalog import (
    ORDER_EVENTS,
    ORDER_KPIS_DAILY,
    ORDER_STATUS_DAILY,
    ORDER_STATUS_HISTORY,
    ORDER_TRACKING,
)
from order_tracking.checks import (
    HISTORY,
    check_history_chains,
    check_history_matches,
    history_is_contiguous,
    history_matches_order_tracking,
    status_goes_backwards,
)
from order_tracking.insights import compute_figures, history_of_days_keys, rebuild_history
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.spark import SparkResource, StepLauncherResource

STATUS_DAILY = AssetKey(ORDER_STATUS_DAILY.name)
KPIS_DAILY = AssetKey(ORDER_KPIS_DAILY.name)

# One step at a time across runs, apart from the pipeline's pool (limit in dagster.yaml).
ORDER_INSIGHTS_WRITER_POOL = "order_insights_writer"

KPI_DESCRIPTION = """One row per day of operational figures, from the status history as known from all data received so far (restated when late lines change a day):
- orders_known: orders with a status by the end of the day;
- status_changes: versions that began during the day;
- deliveries: orders first Delivered during the day (a later re-delivery does not count again);
- on_time_deliveries / on_time_rate: of those, delivered on or before package_deliver_date (the promised date, as the Delivered report gave it); no rate without deliveries;
- transit_days_p50 / transit_days_p90: days from the order's pck_recieved_date (as its first report gave it) to its first Delivered date, nearest rank;
- entered_delayed, returns: versions that began during the day with status Delayed, Returned;
- open_orders: orders whose status at the end of the day is neither Delivered nor Returned; open_older_than_3_days / _7_days: those received more than 3 / 7 days before the day;
- late_lines_received: status reports in the day's own files timestamped before the day.
No customer figures: the files carry no customer id. No figures by address: it is free text and personal data."""

INSIGHT_SPECS = [
    AssetSpec(
        HISTORY,
        deps=[STAGED, TRACKING],
        description=(
            "Every order's status history: one row per version (consecutive reports with one"
            " status), valid_from/valid_to, the current one flagged; rebuilt per order from all"
            " its status reports, so late and replayed lines land where their timestamps put them."
        ),
        kinds={"spark", "delta"},
    ),
    AssetSpec(
        STATUS_DAILY,
        deps=[HISTORY],
        description="Per day, how many orders have each status at the end of the day (UTC), from all data received so far.",
        kinds={"spark", "delta"},
    ),
    AssetSpec(KPIS_DAILY, deps=[HISTORY], description=KPI_DESCRIPTION, kinds={"spark", "delta"}),
]
INSIGHT_SPECS = [spec.replace_attributes(owners=OWNERS, skippable=True) for spec in INSIGHT_SPECS]
INSIGHT_ASSETS = [spec.key.to_user_string() for spec in INSIGHT_SPECS]


@multi_asset(
    name="order_insights",
    specs=INSIGHT_SPECS,
    check_specs=[history_is_contiguous, history_matches_order_tracking, status_goes_backwards],
    can_subset=True,
    pool=ORDER_INSIGHTS_WRITER_POOL,
    **(DAILY_ASSET_DEFAULTS | {"group_name": "order_insights"}),
)
def order_insights(
    context: AssetExecutionContext,
    pyspark: SparkResource,
    lakehouse: Lakehouse,
    step_launcher: StepLauncherResource,
) -> Iterator[MaterializeResult]:
    """Rebuild the history of the orders the run's day(s) brought reports for; then the days'
    figures, unless the history's chain is broken."""
    spark, selected = pyspark.spark_session, context.selected_asset_keys
    days = context.partition_keys  # one day, or a range
    first, last = days[0], days[-1]
    if HISTORY in selected:
        report = rebuild_history(spark, lakehouse, first, last, context.run.run_id)
        context.log.info(
            f"{first}...{last} order_status_history: {report.keys_rebuilt} order(s) rebuilt,"
            f" {report.changed} version(s) changed"
        )
        history = spark.read.format("delta").load(lakehouse.table_uri(ORDER_STATUS_HISTORY))
        tracking = spark.read.format("delta").load(
            ORDER_TRACKING.ensure(spark, lakehouse.table_uri(ORDER_TRACKING))
        )
        # The chains as written, of the orders the run rebuilt (no other chain changed).
        contiguous, backwards = check_history_chains(history_of_days_keys(spark, lakehouse, first, last))
        yield MaterializeResult(
            asset_key=HISTORY,
            metadata={
                **report.metadata(),
                "dagster/column_schema": table_schema(ORDER_STATUS_HISTORY.schema),
                "table": MetadataValue.path(lakehouse.table_uri(ORDER_STATUS_HISTORY)),
                "events_table": MetadataValue.path(lakehouse.table_uri(ORDER_EVENTS)),
            },
            check_results=[contiguous, check_history_matches(history, tracking), backwards],
        )
        if not contiguous.passed:
            # The blocking check: figures computed from a broken history would be wrong.
            context.log.error("order_status_history is not contiguous: the days' figures are not computed")
            return
    wanted = {key for key in (STATUS_DAILY, KPIS_DAILY) if key in selected}
    if not wanted:
        return
    figures = compute_figures(
        spark, lakehouse, first, last, status_mix=STATUS_DAILY in wanted, kpis=KPIS_DAILY in wanted
    )
    for day, day_figures in figures.items():
        kpis = day_figures.kpis
        context.log.info(
            f"{day} order_kpis_daily: {kpis['orders_known']} known, {kpis['deliveries']} delivered,"
            f" {kpis['open_orders']} open"
        )
        if STATUS_DAILY in wanted:
            context.add_asset_metadata(day_figures.status_metadata(), asset_key=STATUS_DAILY, partition_key=day)
        if KPIS_DAILY in wanted:
            context.add_asset_metadata(day_figures.kpi_metadata(), asset_key=KPIS_DAILY, partition_key=day)
    for key, table in ((STATUS_DAILY, ORDER_STATUS_DAILY), (KPIS_DAILY, ORDER_KPIS_DAILY)):
        if key in wanted:
            yield MaterializeResult(
                asset_key=key,
                metadata={
                    "dagster/column_schema": table_schema(table.schema),
                    "table": MetadataValue.path(lakehouse.table_uri(table)),
                },
            )
