from dagster import (
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    asset,
)
from pyspark import StorageLevel
from pyspark.sql import functions as F

from order_tracking import schema as s
from order_tracking.assets.common import ASSET_DEFAULTS
from order_tracking.assets.raw import raw_order_files
from order_tracking.checks import check_no_quarantined_rows, partition_has_no_quarantined_rows
from order_tracking.raw_zone import read_ledger
from order_tracking.tables import ensure_table, retry_on_conflict
from order_tracking.resources.lakehouse import QUARANTINED_ORDERS, RAW_FILE_LEDGER, STAGED_ORDERS
from order_tracking.transforms.parse import (
    RawFile,
    classify_lines,
    file_headers,
    join_quoted_records,
    latest_per_tracking_num,
    read_numbered_lines,
)


def table_schema(struct) -> TableSchema:
    return TableSchema(
        columns=[TableColumn(f.name, f.dataType.simpleString()) for f in struct.fields]
    )


def replace_partition(frame, uri: str, schema, partition_key: str) -> None:
    """Overwrite exactly one day of a table partitioned by _partition_date (idempotent reruns;
    runs for other days may write at the same time)."""
    ensure_table(frame.sparkSession, uri, schema, partitioned_by=s.PARTITION_DATE)
    retry_on_conflict(
        lambda: frame.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", f"{s.PARTITION_DATE} = DATE'{partition_key}'")
        .save(uri)
    )


@asset(
    deps=[raw_order_files],
    kinds={"spark", "delta"},
    check_specs=[partition_has_no_quarantined_rows],
    **ASSET_DEFAULTS,
)
def staged_orders(context: AssetExecutionContext) -> MaterializeResult:
    """Every raw file of the day parsed and typed; bad lines quarantined; one row per tracking_num."""
    lakehouse = context.resources.lakehouse
    spark = context.resources.pyspark.spark_session
    partition_key = context.partition_key

    ledger = read_ledger(spark, lakehouse.table_uri(RAW_FILE_LEDGER), partition_key)
    files = [RawFile(lakehouse.uri_of(e.raw_path), e.raw_path, e.landed_at) for e in ledger]
    lines = join_quoted_records(read_numbered_lines(spark, files))
    classified = classify_lines(spark, lines, file_headers(lines), partition_key)
    # Parsed once, then counted, staged and quarantined from the same cached rows.
    # On disk, streamed batch by batch: caching a day in memory first ran a 1 GiB file out of a
    # 1 GiB driver (bench/large_file.py).
    classified = classified.persist(StorageLevel.DISK_ONLY)
    try:
        is_valid = F.col("reason").isNull() & ~F.col("_blank")
        counts = classified.agg(
            F.count_if(~F.col("_blank")).alias("read"),
            F.count_if(F.col("_blank")).alias("blank"),
            F.count_if(F.col("reason").isNotNull()).alias("quarantined"),
            # de-duplication keeps exactly one row per distinct valid tracking_num
            F.count_distinct(F.when(is_valid, F.col(s.TRACKING_NUM))).alias("staged"),
        ).first()
        valid = classified.where(is_valid)
        staged = latest_per_tracking_num(valid).select(
            *[c for c in s.STAGED_SCHEMA.fieldNames() if c != s.RUN_ID],
            F.lit(context.run.run_id).alias(s.RUN_ID),
        )
        quarantined = classified.where(F.col("reason").isNotNull()).select(
            *[c for c in s.QUARANTINE_SCHEMA.fieldNames() if c != s.RUN_ID],
            F.lit(context.run.run_id).alias(s.RUN_ID),
        )
        replace_partition(staged, lakehouse.table_uri(STAGED_ORDERS), s.STAGED_SCHEMA, partition_key)
        replace_partition(
            quarantined, lakehouse.table_uri(QUARANTINED_ORDERS), s.QUARANTINE_SCHEMA, partition_key
        )
        check = check_no_quarantined_rows(quarantined, counts["quarantined"])
    finally:
        classified.unpersist()

    staged_rows = counts["staged"]
    valid_rows = counts["read"] - counts["quarantined"]
    return MaterializeResult(
        metadata={
            "dagster/row_count": staged_rows,
            "files_read": len(files),
            "rows_read": counts["read"],
            "rows_staged": staged_rows,
            "duplicates_collapsed": valid_rows - staged_rows,
            "rows_quarantined": counts["quarantined"],
            "blank_lines_skipped": counts["blank"],
            "dagster/column_schema": table_schema(s.STAGED_SCHEMA),
            "table": MetadataValue.path(lakehouse.table_uri(STAGED_ORDERS)),
            "quarantine_table": MetadataValue.path(lakehouse.table_uri(QUARANTINED_ORDERS)),
        },
        check_results=[check],
    )
