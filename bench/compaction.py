"""Benchmark (prints figures; never part of `make test`): what day-by-day MERGEs do to
order_tracking's files, and what compacting it (`order_tracking.delta.compact`, the
order_tracking_compaction asset) gives back.

    make bench-compaction    # or: PYTHONPATH=. .venv/bin/python bench/compaction.py [--days 20]

A target of --target orders (written in key order, like upsert.py's) receives --days MERGEs of
--day-rows rows each, through our MERGE (`sequenced_merge` with the key-range bound):
60 % update orders among the newest --window, 40 % are new orders. Then one more day, the probe,
is merged --repeat times into the table as the days left it (restored between runs), then the
table is compacted and the probe merged --repeat times again. Compaction must not change a row:
the table is compared before and after.
"""

import argparse
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.upsert import ROOT, STATUSES, TARGET_FILE_ROWS


def order_rows(ids, day: int):
    """Rows of our table for the order ids in `ids` (a one-column `id` frame), as of day `day`."""
    from pyspark.sql import functions as F

    from order_tracking import schema

    statuses = F.array(*[F.lit(x) for x in STATUSES])
    return ids.select(
        (F.col("id") + 1_000_000).alias(schema.ORDER_NUM),
        F.format_string("TRK%09d", "id").alias(schema.TRACKING_NUM),
        F.lit("2023-01-01").cast("date").alias(schema.RECEIVED_DATE),
        F.lit(None).cast("date").alias(schema.DELIVER_DATE),
        F.element_at(statuses, ((F.col("id") + day) % len(STATUSES) + 1).cast("int")).alias(schema.STATUS),
        F.format_string("%d Elm Street", F.col("id") % 997).alias(schema.ADDRESS),
        (
            F.lit(datetime(2023, 1, 1)).cast("timestamp")
            + F.make_interval(days=F.lit(day), secs=F.col("id") % 86_400)
        ).alias(schema.LAST_UPDATE),
        F.lit(None).cast("string").alias(schema.RESCUED_DATA),
        F.lit(f"raw/day{day}.csv").alias(schema.SOURCE_FILE),
        (F.col("id") % 100_000 + 2).alias(schema.SOURCE_LINE),
        (F.lit(datetime(2023, 1, 1, 23)).cast("timestamp") + F.make_interval(days=F.lit(day))).alias(
            schema.LANDED_AT
        ),
        (F.lit("2023-01-01").cast("date") + F.lit(day)).alias(schema.PARTITION_DATE),
        F.lit("bench").alias(schema.RUN_ID),
    )


def day_source(spark, day: int, first_new: int, rows: int, window: int):
    """One staged day: unique keys, 60 % updates of the newest `window` orders, 40 % new ones."""
    from pyspark.sql import functions as F

    updates = (
        spark.range(int(rows * 0.6))
        .select((F.lit(first_new - window) + (F.rand(seed=day) * window).cast("long")).alias("id"))
        .dropDuplicates(["id"])
    )
    new = spark.range(first_new, first_new + rows - int(rows * 0.6))
    return order_rows(updates.union(new), day)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--day-rows", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from dagster_pyspark.resources import spark_session_from_config
    from order_tracking.catalog import ORDER_TRACKING
    from order_tracking.delta import compact, file_stats
    from order_tracking.delta import history, latest_version, table_ref
    from order_tracking.engine import local_spark_config
    from order_tracking.delta import (
        sequenced_merge,
        summarize_source,
    )

    base = ROOT / "bench" / "data"
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="maintenance_", dir=base))
    try:
        spark = spark_session_from_config(
            local_spark_config() | {"spark.sql.warehouse.dir": str(work / "wh")}
        )
        spark.sparkContext.setLogLevel("ERROR")
        uri = str(work / "order_tracking")
        table = ORDER_TRACKING.ensure(spark, uri)
        order_rows(spark.range(args.target), 0).write.format("delta").mode("append").option(
            "maxRecordsPerFile", TARGET_FILE_ROWS
        ).save(uri)

        def merge(day: int, first_new: int) -> tuple[float, dict]:
            source = day_source(spark, day, first_new, args.day_rows, args.window)
            started = time.monotonic()
            sequenced_merge(spark, table, source, f"bench {day}", summarize_source(source))
            seconds = time.monotonic() - started
            return seconds, history(spark, table, 1).first()["operationMetrics"]

        first_new, started = args.target, time.monotonic()
        for day in range(1, args.days + 1):
            merge(day, first_new)
            first_new += args.day_rows - int(args.day_rows * 0.6)
        print(f"{args.days} days of {args.day_rows:,} rows merged into {args.target:,} orders "
            f"in {time.monotonic() - started:.0f} s")

        def probe(label: str) -> None:
            version = latest_version(spark, table)
            shape = file_stats(spark, table)
            runs = []
            for _ in range(args.repeat):
                seconds, metrics = merge(args.days + 1, first_new)
                runs.append(seconds)
                spark.sql(f"RESTORE TABLE {table_ref(table)} TO VERSION AS OF {version}")
            print(
                f"| {label} | {shape.files} | {shape.bytes / 2**20:.0f} | {min(runs):.1f} | "
                f"{' / '.join(f'{r:.1f}' for r in runs)} | {int(metrics['scanTimeMs']) / 1000:.1f} | "
                f"{int(metrics['rewriteTimeMs']) / 1000:.1f} |"
            )

        print("\n| table | files | MiB | probe MERGE min s | runs (s) | scanTimeMs (s) | rewriteTimeMs (s) |")
        print("|---|---|---|---|---|---|---|")
        before_rows = spark.read.format("delta").load(uri).localCheckpoint()
        probe(f"after {args.days} daily MERGEs")
        started = time.monotonic()
        result = compact(spark, table)
        compaction_s = time.monotonic() - started
        probe("after compaction")
        after_rows = spark.read.format("delta").load(uri)
        changed = before_rows.exceptAll(after_rows).count() + after_rows.exceptAll(before_rows).count()
        print(
            f"\ncompaction: {compaction_s:.1f} s, files {result.before.files} -> {result.after.files} "
            f"({result.files_removed} removed, {result.files_added} added, "
            f"{result.deletion_vectors_removed} deletion vectors dropped); "
            f"rows changed by it: {changed}"
        )
        spark.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{datetime.now(timezone.utc):%Y-%m-%d}, {args.target:,}-order target, "
          f"{args.days} days of {args.day_rows:,} rows, window {args.window:,}")


if __name__ == "__main__":
    main()
