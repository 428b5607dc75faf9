from dagster import AssetExecutionContext, AssetKey, AssetSpec, MaterializeResult, MetadataValue

from order_tracking.partitions import is_order_file
from order_tracking.raw_zone import files_of_partition, ingest_partition
from order_tracking.catalog import RAW_FILE_LEDGER

RAW_ORDER_FILES = AssetKey("raw_order_files")

raw_order_files_spec = AssetSpec(
    RAW_ORDER_FILES,
    description="The day's landed order files, moved byte for byte into the raw zone and recorded in a ledger.",
    kinds={"gcs", "spark", "delta"},
)


def materialize_raw_order_files(context: AssetExecutionContext) -> MaterializeResult:
    landing, lakehouse = context.resources.landing, context.resources.lakehouse
    spark = context.resources.pyspark.spark_session

    waiting = landing.list_files()
    for name in sorted(f.name for f in waiting if not is_order_file(f.name)):
        context.log.info(f"Left in landing, not an order file: {name}")

    # A backfill run covers a range of days (BackfillPolicy.single_run); each day keeps its own
    # ledger rows, raw folder and metadata.
    for day in context.partition_keys:
        report = ingest_partition(
            spark,
            landing,
            lakehouse,
            lakehouse.table_uri(RAW_FILE_LEDGER),
            day,
            files_of_partition(waiting, day),
            context.run.run_id,
        )
        for name in report.replays:
            context.log.info(f"{name}: same bytes as a recorded version, removed from landing")
        for name in report.changed_while_moving:
            context.log.warning(f"{name}: replaced while being moved; a later run will take it")
        context.add_asset_metadata(
            {
                "files_moved": len(report.recorded),
                "bytes_moved": report.bytes_moved,
                "replays_ignored": len(report.replays),
                "files": MetadataValue.md(
                    "\n".join(
                        f"- `{e.file_name}` → `{e.raw_path}` ({e.size_bytes} B, md5 {e.md5})"
                        for e in report.recorded
                    )
                    or "(no new files)"
                ),
            },
            asset_key=RAW_ORDER_FILES,
            partition_key=day,
        )

    return MaterializeResult(
        asset_key=RAW_ORDER_FILES,
        metadata={
            "landing": MetadataValue.path(landing.location),
            "ledger": MetadataValue.path(lakehouse.table_uri(RAW_FILE_LEDGER)),
        },
    )
