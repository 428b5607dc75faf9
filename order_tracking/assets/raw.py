from dagster import AssetExecutionContext, AssetKey, AssetSpec, MaterializeResult, MetadataValue
from pyspark.sql import SparkSession

from order_tracking.catalog import RAW_FILE_LEDGER
from order_tracking.daily import land_days
from order_tracking.partitions import is_order_file
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.landing import LandingZone

RAW_ORDER_FILES = AssetKey("raw_order_files")

raw_order_files_spec = AssetSpec(
    RAW_ORDER_FILES,
    description="The day's landed order files, moved byte for byte into the raw zone and recorded in a ledger.",
    kinds={"gcs", "spark", "delta"},
)


def materialize_raw_order_files(
    context: AssetExecutionContext, spark: SparkSession, landing: LandingZone, lakehouse: Lakehouse
) -> MaterializeResult:
    waiting = landing.list_files()
    for name in sorted(f.name for f in waiting if not is_order_file(f.name)):
        context.log.info(f"Left in landing, not an order file: {name}")
    # A backfill run covers a range of days (BackfillPolicy.single_run): one ledger commit for
    # them all, and each day keeps its own ledger rows, raw folder and metadata.
    reports = land_days(spark, landing, lakehouse, context.partition_keys, waiting, context.run.run_id)
    for day, report in reports.items():
        for name in report.replays:
            context.log.info(f"{name}: same bytes as a recorded version, removed from landing")
        for name in report.changed_while_moving:
            context.log.warning(f"{name}: replaced while being moved; a later run will take it")
        context.log.info(f"{day} raw_order_files: {len(report.recorded)} file(s) moved")
        context.add_asset_metadata(report.metadata(), asset_key=RAW_ORDER_FILES, partition_key=day)
    return MaterializeResult(
        asset_key=RAW_ORDER_FILES,
        metadata={
            "landing": MetadataValue.path(landing.location),
            "ledger": MetadataValue.path(lakehouse.table_uri(RAW_FILE_LEDGER)),
        },
    )
