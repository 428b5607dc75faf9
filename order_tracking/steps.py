"""What staged_orders and order_tracking do for one day, as plain functions of Spark and the
lakehouse. The assets wrap them (Dagster context in, metadata and check results out); the
property test drives them directly, so many random histories stay affordable.
"""

from dataclasses import dataclass, field
from datetime import date

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from order_tracking import schema as s
from order_tracking.faults import crash_while_reading
from order_tracking.raw_zone import read_ledger
from order_tracking.catalog import (
    ORDER_TRACKING,
    QUARANTINED_ORDERS,
    RAW_FILE_LEDGER,
    STAGED_ORDERS,
    Table,
)
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.tables import retry_on_conflict, table_ref
from order_tracking.transforms.merge import (
    MergeCounts,
    SourceSummary,
    merge_into_order_tracking,
    summarize_source,
)
from order_tracking.transforms.parse import (
    RawFile,
    classify_lines,
    file_headers,
    mark_latest_per_tracking_num,
    read_records,
)

SAMPLE_SIZE = 5
TOP_REASONS = 20


@dataclass(frozen=True)
class StagingReport:
    files_read: int
    rows_read: int
    blank_lines: int
    rows_quarantined: int
    rows_staged: int
    # The staged rows' smallest and largest tracking_num (None without rows): with rows_staged,
    # the MERGE's source summary, so the MERGE need not read the day back to find it.
    staged_keys: tuple[str, str] | None = None
    # Only filled when something was quarantined: the commonest reasons and the first lines.
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    quarantine_sample: list[dict] = field(default_factory=list)

    @property
    def duplicates_collapsed(self) -> int:
        return self.rows_read - self.rows_quarantined - self.rows_staged

    @property
    def staged(self) -> SourceSummary:
        return SourceSummary(self.rows_staged, self.staged_keys)


def replace_partition(frame: DataFrame, table: Table, uri: str, partition_key: str) -> None:
    """Overwrite exactly one day of a table partitioned by _partition_date (idempotent reruns;
    runs for other days may write at the same time)."""
    table.ensure(frame.sparkSession, uri)
    retry_on_conflict(
        lambda: frame.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", f"{s.PARTITION_DATE} = DATE'{partition_key}'")
        .save(uri)
    )


def clear_partition(spark: SparkSession, table: Table, uri: str, partition_key: str) -> None:
    """Empty one day of a table partitioned by _partition_date (whole files only: no rewrite)."""
    table.ensure(spark, uri)
    retry_on_conflict(
        lambda: spark.sql(
            f"DELETE FROM {table_ref(uri)} WHERE {s.PARTITION_DATE} = :day",
            args={"day": date.fromisoformat(partition_key)},
        )
    )


def stage_partition(
    spark: SparkSession, lakehouse: Lakehouse, partition_key: str, run_id: str
) -> StagingReport:
    """Parse every recorded raw file of the day; replace the day in staged_orders (one row per
    tracking_num) and in quarantined_orders (every bad line, with its reason)."""
    ledger = read_ledger(spark, lakehouse.table_uri(RAW_FILE_LEDGER), partition_key)
    files = [RawFile(lakehouse.uri_of(e.raw_path), e.raw_path, e.landed_at) for e in ledger]
    headers = file_headers(spark, files)
    records = read_records(spark, files, headers)
    classified = classify_lines(spark, records, headers, partition_key)
    is_valid = F.col("reason").isNull() & ~F.col("_blank")
    # Counted while the staged rows are written, in the same pass over the files: no cache of
    # the parsed day (on disk it cost more than the parse; in memory a 1 GiB file ran a 1 GiB
    # driver out of memory, bench/large_file.py). One observation, next to the write: over Spark
    # Connect a write reports only that one. So every line reaches it, the newest row per key
    # marked among the valid ones, and the filter comes after it (before it, on a 1M-row day the
    # filter was planned into the parse's projection: 50 s instead of 27 s).
    counts = Observation()  # unnamed: unique per call
    staged = (
        mark_latest_per_tracking_num(classified, among=is_valid)
        .observe(
            counts,
            F.count_if(~F.col("_blank")).alias("read"),
            F.count_if(F.col("_blank")).alias("blank"),
            F.count_if(F.col("reason").isNotNull()).alias("quarantined"),
            F.count_if("_latest").alias("staged"),
            F.min(F.when(F.col("_latest"), F.col(s.TRACKING_NUM))).alias("low_key"),
            F.max(F.when(F.col("_latest"), F.col(s.TRACKING_NUM))).alias("high_key"),
        )
        .where("_latest")
        .select(
            *[c for c in s.STAGED_SCHEMA.fieldNames() if c != s.RUN_ID],
            F.lit(run_id).alias(s.RUN_ID),
        )
    )
    replace_partition(staged, STAGED_ORDERS, lakehouse.table_uri(STAGED_ORDERS), partition_key)
    counts = counts.get
    # A clean day (the usual one) is parsed once, and its old quarantine rows, if any, are dropped
    # with a metadata-only delete. A day with bad lines is parsed a second time to write them.
    quarantine_uri = lakehouse.table_uri(QUARANTINED_ORDERS)
    reasons, sample = {}, []
    if counts["quarantined"]:
        quarantined = classified.where(F.col("reason").isNotNull()).select(
            *[c for c in s.QUARANTINE_SCHEMA.fieldNames() if c != s.RUN_ID],
            F.lit(run_id).alias(s.RUN_ID),
        )
        replace_partition(quarantined, QUARANTINED_ORDERS, quarantine_uri, partition_key)
        reasons, sample = _quarantine_summary(spark, quarantine_uri, partition_key)
    else:
        clear_partition(spark, QUARANTINED_ORDERS, quarantine_uri, partition_key)

    return StagingReport(
        files_read=len(files),
        rows_read=counts["read"],
        blank_lines=counts["blank"],
        rows_quarantined=counts["quarantined"],
        rows_staged=counts["staged"],
        staged_keys=None if counts["low_key"] is None else (counts["low_key"], counts["high_key"]),
        quarantine_reasons=reasons,
        quarantine_sample=sample,
    )


def _quarantine_summary(
    spark: SparkSession, uri: str, partition_key: str
) -> tuple[dict[str, int], list[dict]]:
    """From the day's written quarantine rows: a few small reads instead of two more parses."""
    quarantined = (
        spark.read.format("delta")
        .load(uri)
        .where(F.col(s.PARTITION_DATE) == F.lit(partition_key).cast("date"))
        # A line that is not UTF-8 keeps its bytes in the table; what leaves Spark must be text
        # (over Spark Connect the client could not even decode the row).
        .withColumns({c: F.make_valid_utf8(c) for c in ("raw_text", "reason")})
    )
    by_reason = quarantined.groupBy("reason").count().orderBy(F.desc("count")).limit(TOP_REASONS)
    first_lines = (
        quarantined.select(s.SOURCE_FILE, s.SOURCE_LINE, "raw_text", "reason")
        .orderBy(s.SOURCE_FILE, s.SOURCE_LINE)
        .limit(SAMPLE_SIZE)
    )
    return (
        {r["reason"]: r["count"] for r in by_reason.collect()},
        [r.asDict() for r in first_lines.collect()],
    )


def merge_partition(
    spark: SparkSession,
    lakehouse: Lakehouse,
    partition_key: str,
    run_id: str,
    staged_now: SourceSummary | None = None,
) -> MergeCounts:
    """Upsert the day's staged rows into order_tracking; returns what the MERGE did.

    `staged_now` is what this step's staging of the day just wrote (StagingReport.staged): given,
    the day is not read back to summarize it. The source is then the staged rows within its key
    range, because the MERGE only matches target rows within that range: a run that restaged the
    day since (two runs of one day meeting without the pool) may have added keys outside it, and
    merging those here would insert them a second time. That run merges them itself."""
    target = ORDER_TRACKING.ensure(spark, lakehouse.table_uri(ORDER_TRACKING))
    staged = (
        spark.read.format("delta")
        .load(lakehouse.table_uri(STAGED_ORDERS))
        .where(F.col(s.PARTITION_DATE) == F.lit(partition_key).cast("date"))
        .select(*s.ORDER_TRACKING_SCHEMA.fieldNames())
    )
    if staged_now is None:
        source = summarize_source(staged)
    else:
        source = staged_now
        if source.keys:
            staged = staged.where(F.col(s.TRACKING_NUM).between(*source.keys))
    staged = crash_while_reading(staged, "during_merge")
    # One tag per run and day: a range run commits one MERGE per day, and each must find its own.
    return merge_into_order_tracking(
        spark, target, staged, commit_tag=f"{run_id} {partition_key}", source=source
    )
