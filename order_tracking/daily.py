"""A day's work, in the order a run does it: land the day's files in the raw zone, stage them,
merge them into order_tracking. Plain functions of Spark, the landing zone and the lakehouse;
each returns a report that builds its own Dagster metadata. The assets wrap them (one step, any
subset, a day or a range); the property and concurrency tests drive them directly, so many
random histories stay affordable.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from dagster import MetadataValue
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from order_tracking.catalog import (
    ORDER_EVENTS,
    ORDER_TRACKING,
    QUARANTINED_ORDERS,
    RAW_FILE_LEDGER,
    STAGED_ORDERS,
)
from order_tracking.delta import (
    MergeCounts,
    SourceSummary,
    clear_partition,
    replace_partition,
    sequenced_merge,
    summarize_source,
)
from order_tracking.faults import crash_point, crash_while_reading
from order_tracking.partitions import is_order_file, partition_for_file
from order_tracking.raw_zone import (
    LedgerEntry,
    append_ledger,
    copy_to_a_free_raw_path,
    read_ledger,
    read_ledgers,
)
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.landing import LandedFile, LandingZone, SourceChanged
from order_tracking.schema import (
    EVENTS_SCHEMA,
    LAST_UPDATE,
    ORDER_TRACKING_SCHEMA,
    PARTITION_DATE,
    QUARANTINE_SCHEMA,
    RUN_ID,
    SOURCE_FILE,
    SOURCE_LINE,
    STAGED_SCHEMA,
    TRACKING_NUM,
)
from order_tracking.transforms.parse import RawFile, classify_lines, file_headers, read_records
from order_tracking.transforms.sequence import mark_latest_per_tracking_num

SAMPLE_SIZE = 5
TOP_REASONS = 20


# --- Land: the day's landed files into the raw zone ----------------------------------------------


@dataclass
class LandingReport:
    recorded: list[LedgerEntry] = field(default_factory=list)
    replays: list[str] = field(default_factory=list)  # same name and bytes as a recorded version
    changed_while_moving: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    # Landed files to remove once the ledger holds them: the copied ones and the replays.
    done: list[LandedFile] = field(default_factory=list, repr=False)

    @property
    def bytes_moved(self) -> int:
        return sum(e.size_bytes for e in self.recorded)

    def metadata(self) -> dict:
        moved = "\n".join(
            f"- `{e.file_name}` → `{e.raw_path}` ({e.size_bytes} B, md5 {e.md5})" for e in self.recorded
        )
        return {
            "files_moved": len(self.recorded),
            "bytes_moved": self.bytes_moved,
            "replays_ignored": len(self.replays),
            "files": MetadataValue.md(moved or "(no new files)"),
            # When each file landed: what the arrival freshness check judges (freshness.py).
            "landed": MetadataValue.json(
                [{"file": e.file_name, "landed_at": e.landed_at.isoformat()} for e in self.recorded]
            ),
        }


def files_of_day(files: list[LandedFile], day: str) -> list[LandedFile]:
    return [f for f in files if is_order_file(f.name) and partition_for_file(f.name, f.landed_at) == day]


def land_days(
    spark: SparkSession,
    landing: LandingZone,
    lakehouse: Lakehouse,
    days: list[str],
    landed: list[LandedFile],
    run_id: str,
) -> dict[str, LandingReport]:
    """Move the order files of `days` (one, or a backfill's range) among `landed` into the raw
    zone and record them: one ledger read and one ledger commit for all the days.

    Order of effects, chosen so a crash at any point loses nothing and double-counts nothing:
    1. copy the landed bytes to a raw path that was never used (verified by md5),
    2. append every copied file to the ledger in one Delta commit,
    3. only then remove the landed files.
    A rerun after (1) finds the identical raw file and reuses it; after (2) it recognises the
    landed file as already recorded and just removes it.
    """
    ledger_uri = lakehouse.table_uri(RAW_FILE_LEDGER)
    ledgers = read_ledgers(spark, ledger_uri, days)
    reports = {day: _copy_day(landing, lakehouse, day, ledgers[day], landed, run_id) for day in days}
    crash_point("after_raw_copy")
    append_ledger(spark, ledger_uri, [entry for report in reports.values() for entry in report.recorded])
    for report in reports.values():
        report.removed = [f.name for f in report.done if landing.remove(f)]
    return reports


def land_day(
    spark: SparkSession,
    landing: LandingZone,
    lakehouse: Lakehouse,
    day: str,
    landed: list[LandedFile],
    run_id: str,
) -> LandingReport:
    return land_days(spark, landing, lakehouse, [day], landed, run_id)[day]


def _copy_day(
    landing: LandingZone,
    lakehouse: Lakehouse,
    day: str,
    ledger: list[LedgerEntry],
    landed: list[LandedFile],
    run_id: str,
) -> LandingReport:
    """Step (1) for one day: copy its new files into the raw zone, given what its ledger holds."""
    report, ledger = LandingReport(), list(ledger)  # grows with this day's copies
    known = {(e.file_name, e.md5) for e in ledger}
    used_paths = {e.raw_path for e in ledger}
    for file in files_of_day(landed, day):
        try:
            md5 = landing.md5(file)
        except SourceChanged:
            report.changed_while_moving.append(file.name)
            continue
        if (file.name, md5) in known:
            report.replays.append(file.name)
            report.done.append(file)
            continue
        version = 1 + max((e.version for e in ledger if e.file_name == file.name), default=0)
        try:
            version, relpath, size = copy_to_a_free_raw_path(
                lakehouse, landing, file, md5, day, version, used_paths
            )
        except SourceChanged:
            report.changed_while_moving.append(file.name)
            continue
        entry = LedgerEntry(
            partition_date=date.fromisoformat(day),
            file_name=file.name,
            version=version,
            raw_path=relpath,
            size_bytes=size,
            md5=md5,
            landed_at=file.landed_at,
            generation=file.generation,
            recorded_at=datetime.now(timezone.utc),
            run_id=run_id,
        )
        report.recorded.append(entry)
        ledger.append(entry)
        known.add((file.name, md5))
        used_paths.add(relpath)
        report.done.append(file)
    return report


# --- Stage: the day's raw files parsed into staged_orders and quarantined_orders ----------------


@dataclass(frozen=True)
class StagingReport:
    files_read: int
    rows_read: int
    blank_lines: int
    rows_quarantined: int
    rows_staged: int
    events: int = 0  # valid lines less repeats of a (tracking_num, timestamp)
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

    def metadata(self) -> dict:
        return {
            "dagster/row_count": self.rows_staged,
            "files_read": self.files_read,
            "rows_read": self.rows_read,
            "rows_staged": self.rows_staged,
            "events": self.events,
            "duplicates_collapsed": self.duplicates_collapsed,
            "rows_quarantined": self.rows_quarantined,
            "blank_lines_skipped": self.blank_lines,
        }



# How many days of a range are staged side by side. A sample day's staging is some 20 small Spark
# jobs, each mostly fixed cost (scheduling, planning, a commit), so one day at a time leaves the
# engine's cores idle: five sample days took 13.3-15.2 s one by one, 8.3-10.8 s three at a time,
# 7.6-7.8 s five at a time. Bounded, as each day's parse holds its own memory on the engine.
DAYS_STAGED_AT_ONCE = 4


def stage_days(
    spark: SparkSession, lakehouse: Lakehouse, days: list[str], run_id: str
) -> dict[str, StagingReport]:
    """stage_day for each of `days` (one, or a backfill's range), several at once: each day
    replaces only its own partitions, which concurrent Delta writes allow."""
    if len(days) == 1:
        return {days[0]: stage_day(spark, lakehouse, days[0], run_id)}
    # Created ahead: first writes racing to create a table conflict and retry.
    for table in (ORDER_EVENTS, STAGED_ORDERS, QUARANTINED_ORDERS):
        table.ensure(spark, lakehouse.table_uri(table))
    with ThreadPoolExecutor(min(len(days), DAYS_STAGED_AT_ONCE)) as pool:
        reports = pool.map(lambda day: stage_day(spark, lakehouse, day, run_id), days)
        return dict(zip(days, reports))


def stage_day(spark: SparkSession, lakehouse: Lakehouse, day: str, run_id: str) -> StagingReport:
    """Parse every recorded raw file of the day; replace the day in order_events (every valid
    line, one per tracking_num and timestamp), staged_orders (one row per tracking_num, from the
    events) and quarantined_orders (every bad line, with its reason)."""
    ledger = read_ledger(spark, lakehouse.table_uri(RAW_FILE_LEDGER), day)
    files = [RawFile(lakehouse.uri_of(e.raw_path), e.raw_path, e.landed_at) for e in ledger]
    headers = file_headers(spark, files)
    records = read_records(spark, files, headers)
    classified = classify_lines(spark, records, headers, day)
    is_valid = F.col("reason").isNull() & ~F.col("_blank")
    # The files are parsed once, into the events; the staged rows are the newest event per key,
    # read back from the events' Parquet (cheaper than a second parse of the text). No cache of
    # the parsed day: on disk it cost more than the parse; in memory a 1 GiB file ran a 1 GiB
    # driver out of memory (bench/large_file.py). Counted while writing, one observation next to
    # each write (over Spark Connect a write reports only that one). So every line reaches it, the
    # event per timestamp marked among the valid ones, and the filter comes after it (before it,
    # on a 1M-row day the filter was planned into the parse's projection: 50 s instead of 27 s).
    parsed = Observation()  # unnamed: unique per call
    events = (
        mark_latest_per_tracking_num(classified, among=is_valid, per=(TRACKING_NUM, LAST_UPDATE))
        .observe(
            parsed,
            F.count_if(~F.col("_blank")).alias("read"),
            F.count_if(F.col("_blank")).alias("blank"),
            F.count_if(F.col("reason").isNotNull()).alias("quarantined"),
            F.count_if("_latest").alias("events"),
        )
        .where("_latest")
        .select(
            *[c for c in EVENTS_SCHEMA.fieldNames() if c != RUN_ID],
            F.lit(run_id).alias(RUN_ID),
        )
    )
    events_uri = ORDER_EVENTS.ensure(spark, lakehouse.table_uri(ORDER_EVENTS))
    replace_partition(events, events_uri, day)
    parsed = parsed.get

    kept = Observation()
    staged = (
        mark_latest_per_tracking_num(_day_of(spark, events_uri, day), among=F.lit(True))
        .observe(
            kept,
            F.count_if("_latest").alias("staged"),
            F.min(F.when(F.col("_latest"), F.col(TRACKING_NUM))).alias("low_key"),
            F.max(F.when(F.col("_latest"), F.col(TRACKING_NUM))).alias("high_key"),
        )
        .where("_latest")
        .select(*STAGED_SCHEMA.fieldNames())
    )
    replace_partition(staged, STAGED_ORDERS.ensure(spark, lakehouse.table_uri(STAGED_ORDERS)), day)
    counts = parsed | kept.get
    # A clean day (the usual one) is parsed once, and its old quarantine rows, if any, are dropped
    # with a metadata-only delete. A day with bad lines is parsed a second time to write them.
    quarantine_uri = QUARANTINED_ORDERS.ensure(spark, lakehouse.table_uri(QUARANTINED_ORDERS))
    reasons, sample = {}, []
    if counts["quarantined"]:
        quarantined = classified.where(F.col("reason").isNotNull()).select(
            *[c for c in QUARANTINE_SCHEMA.fieldNames() if c != RUN_ID],
            F.lit(run_id).alias(RUN_ID),
        )
        replace_partition(quarantined, quarantine_uri, day)
        reasons, sample = _quarantine_summary(spark, quarantine_uri, day)
    else:
        clear_partition(spark, quarantine_uri, day)

    return StagingReport(
        files_read=len(files),
        rows_read=counts["read"],
        blank_lines=counts["blank"],
        rows_quarantined=counts["quarantined"],
        rows_staged=counts["staged"],
        events=counts["events"],
        staged_keys=None if counts["low_key"] is None else (counts["low_key"], counts["high_key"]),
        quarantine_reasons=reasons,
        quarantine_sample=sample,
    )


def _day_of(spark: SparkSession, uri: str, day: str) -> DataFrame:
    """One day of a table partitioned by _partition_date."""
    return spark.read.format("delta").load(uri).where(F.col(PARTITION_DATE) == F.lit(day).cast("date"))


def _quarantine_summary(spark: SparkSession, uri: str, day: str) -> tuple[dict[str, int], list[dict]]:
    """From the day's written quarantine rows: a few small reads instead of two more parses."""
    quarantined = (
        _day_of(spark, uri, day)
        # A line that is not UTF-8 keeps its bytes in the table; what leaves Spark must be text
        # (over Spark Connect the client could not even decode the row).
        .withColumns({c: F.make_valid_utf8(c) for c in ("raw_text", "reason")})
    )
    by_reason = quarantined.groupBy("reason").count().orderBy(F.desc("count")).limit(TOP_REASONS)
    first_lines = (
        quarantined.select(SOURCE_FILE, SOURCE_LINE, "raw_text", "reason")
        .orderBy(SOURCE_FILE, SOURCE_LINE)
        .limit(SAMPLE_SIZE)
    )
    return (
        {r["reason"]: r["count"] for r in by_reason.collect()},
        [r.asDict() for r in first_lines.collect()],
    )


# --- Merge: the day's staged rows into order_tracking -------------------------------------------


def merge_day(
    spark: SparkSession,
    lakehouse: Lakehouse,
    day: str,
    run_id: str,
    staged_now: SourceSummary | None = None,
) -> MergeCounts:
    """Upsert the day's staged rows into order_tracking; returns what the MERGE did.

    `staged_now` is what this step's staging of the day just wrote (StagingReport.staged): given,
    the day is not read back to summarize it. The source is then the staged rows within its key
    range, because the MERGE only matches target rows within that range: a run that restaged the
    day since (two runs of one day meeting without the pool) may have added keys outside it, and
    merging those here would insert them a second time. That run merges them itself."""
    crash_point("before_merge")
    target = ORDER_TRACKING.ensure(spark, lakehouse.table_uri(ORDER_TRACKING))
    staged = _day_of(spark, lakehouse.table_uri(STAGED_ORDERS), day).select(*ORDER_TRACKING_SCHEMA.fieldNames())
    if staged_now is None:
        source = summarize_source(staged)
    else:
        source = staged_now
        if source.keys:
            staged = staged.where(F.col(TRACKING_NUM).between(*source.keys))
    staged = crash_while_reading(staged, "during_merge")
    # One tag per run and day: a range run commits one MERGE per day, and each must find its own.
    return sequenced_merge(spark, target, staged, commit_tag=f"{run_id} {day}", source=source)
