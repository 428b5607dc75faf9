"""Benchmark (prints figures; never part of `make test`): our staging + sequenced MERGE against the
old notebooks' logic and a plain MERGE, on the same generated data, in one run on one machine.

    make bench                # or: PYTHONPATH=. .venv/bin/python bench/upsert.py [--scale 0.1]

Contenders, each in its own process with the same Spark settings (so each has its own JVM and
its own peak memory):
  A  the old notebooks: CSV -> stage (overwrite), DELETE target keys found in stage, APPEND stage;
  B  a plain Delta MERGE (update all / insert all) after keeping the newest row per key, which
     it needs in order not to fail on duplicate source keys;
  C  our assets' code path: raw copy + ledger, staging (parse, quarantine, newest row per key),
     the sequenced MERGE into the clustered, deletion-vector table.

The generated data (deterministic by seed; see `day_rows`): a target of T orders where the most
recent IN_FLIGHT of them are still moving, and a day file in which 60 % of the lines update an
in-flight order, 30 % are new orders, 5 % are late lines (older than what the target holds) and
5 % repeat a key of the same file with an older timestamp.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).parents[1]
HEADER = "order_num,tracking_num,pck_recieved_date,package_deliver_date,status,address,last_update_timestamp"
STATUSES = ("Order Placed", "In Transit", "Out for Delivery", "Delivered", "Delayed", "Returned")
IN_FLIGHT = 1_000_000
WARM_UP_ROWS = 10_000
# Targets are written in files of at most this many rows, in key order, for every contender: a
# table that grew day by day has many files, not the 4 that one bulk write of 2 cores makes.
TARGET_FILE_ROWS = 1_000_000
BASE_DAY, DAY = date(2023, 1, 1), date(2023, 1, 2)
DAY_KEY = DAY.isoformat()
BUSINESS = HEADER.split(",")


# ---------------------------------------------------------------------------------------------
# Data


def base_rows(spark, rows: int):
    """The target's existing orders 0..rows-1, deterministic (pure functions of the id), with
    the lineage columns our table carries; the other contenders keep the business columns."""
    from pyspark.sql import functions as F

    ids = spark.range(rows)
    statuses = F.array(*[F.lit(s) for s in STATUSES])
    return ids.select(
        (F.col("id") + 1_000_000).alias("order_num"),
        F.format_string("TRK%09d", "id").alias("tracking_num"),
        F.lit(BASE_DAY).alias("pck_recieved_date"),
        F.lit(None).cast("date").alias("package_deliver_date"),
        F.element_at(statuses, (F.col("id") % len(STATUSES) + 1).cast("int")).alias("status"),
        F.format_string("%d Elm Street", F.col("id") % 997).alias("address"),
        (F.lit(datetime(2023, 1, 1)).cast("timestamp") + F.make_interval(secs=F.col("id") % 86_400)).alias(
            "last_update_timestamp"
        ),
        F.lit(None).cast("string").alias("_rescued_data"),
        F.lit(f"raw/dt={BASE_DAY}/base.csv").alias("_source_file"),
        (F.col("id") + 2).alias("_source_line"),
        F.lit(datetime(2023, 1, 1, 23, tzinfo=timezone.utc)).cast("timestamp").alias("_landed_at"),
        F.lit(BASE_DAY).alias("_partition_date"),
        F.lit("bench-base").alias("_run_id"),
    )


def day_rows(target_rows: int, day_rows_count: int, seed: int):
    """Yield (line_number, csv_line) of a day's file for a target of `target_rows` orders."""
    rng = random.Random(seed)
    in_flight = min(target_rows, IN_FLIGHT)
    written: list[tuple[int, str, int]] = []  # (id, date, seconds) of the lines written so far
    for j in range(day_rows_count):
        r = rng.random()
        seconds, day = rng.randrange(86_400), str(DAY)
        if r < 0.60 or (r >= 0.95 and not written):
            key = target_rows - in_flight + rng.randrange(in_flight)
        elif r < 0.90:
            key = target_rows + j
        elif r < 0.95:  # late: older than the target's row of that key
            key, day = target_rows - in_flight + rng.randrange(in_flight), "2022-12-31"
        else:  # the same key again, older than its earlier line in this file
            key, day, earlier = written[rng.randrange(len(written))]
            seconds = max(0, earlier - 1 - rng.randrange(3600))
        stamp = f"{day} {_hms(seconds)}"
        written.append((key, day, seconds))
        yield j + 2, (
            f"{1_000_000 + key},TRK{key:09d},{BASE_DAY},{DAY},{STATUSES[(key + j) % 6]},"
            f"{key % 997} Elm Street,{stamp}"
        )


def _hms(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def write_day(path: Path, target_rows: int, rows: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", buffering=8 << 20) as out:
        out.write(HEADER + "\n")
        for _, line in day_rows(target_rows, rows, seed):
            out.write(line + "\n")
    landed = datetime(2023, 1, 2, 23, 30, tzinfo=timezone.utc).timestamp()
    os.utime(path, (landed, landed))  # lands after the target's rows


def expected_table(spark, target_rows: int, day_file: Path):
    """The rule, computed independently of any contender: per tracking_num the greatest
    (last_update_timestamp, landed later, later line) over the target's rows and the day's."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    day = (
        spark.read.option("header", True).csv(str(day_file), schema=_csv_schema())
        .withColumn("_src", F.lit(1))
        .withColumn("_line", F.monotonically_increasing_id())  # file order: one file, read in order
    )
    base = base_rows(spark, target_rows).select(*BUSINESS).withColumn("_src", F.lit(0)).withColumn(
        "_line", F.lit(0).cast("long")
    )
    newest = Window.partitionBy("tracking_num").orderBy(
        F.desc("last_update_timestamp"), F.desc("_src"), F.desc("_line")
    )
    return (
        base.unionByName(day)
        .withColumn("_rank", F.row_number().over(newest))
        .where("_rank = 1")
        .select(*BUSINESS)
    )


def _csv_schema():
    from pyspark.sql.types import StructType

    from order_tracking import schema

    return StructType(schema.ORDER_FIELDS)


# ---------------------------------------------------------------------------------------------
# Contenders: build a target, stage a day, merge it


class OldNotebooks:
    name = "A old notebooks (overwrite stage, delete + append)"

    def __init__(self, spark, work: Path):
        self.spark, self.work = spark, work

    def build_target(self, rows: int, label: str) -> str:
        uri = str(self.work / f"target_{label}")
        base_rows(self.spark, rows).select(*BUSINESS).write.format("delta").mode("overwrite").option(
            "maxRecordsPerFile", TARGET_FILE_ROWS
        ).save(uri)
        return uri

    def stage(self, day_file: Path, target: str) -> None:
        frame = self.spark.read.option("header", True).csv(str(day_file), schema=_csv_schema())
        frame.write.format("delta").mode("overwrite").save(self._stage_uri(target))

    def merge(self, target: str) -> None:
        from delta.tables import DeltaTable

        stage = self.spark.read.format("delta").load(self._stage_uri(target))
        # Delta's DELETE takes no subquery: deleting "keys found in stage" is a delete-only MERGE.
        keys = stage.select("tracking_num").distinct()
        (
            DeltaTable.forPath(self.spark, target)
            .alias("t")
            .merge(keys.alias("s"), "t.tracking_num = s.tracking_num")
            .whenMatchedDelete()
            .execute()
        )
        stage.write.format("delta").mode("append").save(target)

    def _stage_uri(self, target: str) -> str:
        return target + "_stage"


class PlainMerge(OldNotebooks):
    name = "B plain MERGE (newest row per key, update all / insert all)"

    def merge(self, target: str) -> None:
        from delta.tables import DeltaTable
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        stage = self.spark.read.format("delta").load(self._stage_uri(target))
        newest = Window.partitionBy("tracking_num").orderBy(F.desc("last_update_timestamp"))
        source = stage.withColumn("_rank", F.row_number().over(newest)).where("_rank = 1").drop("_rank")
        (
            DeltaTable.forPath(self.spark, target)
            .alias("t")
            .merge(source.alias("s"), "t.tracking_num = s.tracking_num")
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
            .execute()
        )


class Ours:
    name = "C ours (raw zone + staging + sequenced MERGE)"

    def __init__(self, spark, work: Path):
        self.spark, self.work = spark, work

    def build_target(self, rows: int, label: str) -> str:
        from order_tracking.catalog import ORDER_TRACKING

        root = self.work / f"lakehouse_{label}"
        uri = str(root / "order_tracking")
        ORDER_TRACKING.ensure(self.spark, uri)
        base_rows(self.spark, rows).write.format("delta").mode("append").option(
            "maxRecordsPerFile", TARGET_FILE_ROWS
        ).save(uri)
        return uri

    def _lakehouse(self, target: str):
        from order_tracking.resources.lakehouse import Lakehouse

        return Lakehouse(uri=str(Path(target).parent))

    def stage(self, day_file: Path, target: str) -> None:
        from order_tracking.daily import land_day, stage_day
        from order_tracking.resources.landing import LandingZone

        landing = LandingZone(uri=str(day_file.parent))
        lakehouse = self._lakehouse(target)
        land_day(self.spark, landing, lakehouse, DAY_KEY, landing.list_files(), "bench")
        # As in a run's step: the MERGE takes the staged day's summary from the staging.
        self.staged_now = stage_day(self.spark, lakehouse, DAY_KEY, "bench").staged

    def merge(self, target: str) -> None:
        from order_tracking.daily import merge_day

        merge_day(self.spark, self._lakehouse(target), DAY_KEY, "bench", self.staged_now)


CONTENDERS = {"A": OldNotebooks, "B": PlainMerge, "C": Ours}


def last_operations(spark, uri: str, since_version: int) -> dict:
    """What the timed step did to the target's files (Delta's own operation metrics)."""
    from delta.tables import DeltaTable

    history = DeltaTable.forPath(spark, uri).history().where(f"version > {since_version}").collect()
    totals = {"files_removed": 0, "files_added": 0, "deletion_vectors_added": 0}
    for commit in history:
        m = commit["operationMetrics"] or {}
        totals["files_removed"] += int(m.get("numTargetFilesRemoved", m.get("numRemovedFiles", 0)))
        totals["files_added"] += int(m.get("numTargetFilesAdded", m.get("numAddedFiles", m.get("numFiles", 0))))
        totals["deletion_vectors_added"] += int(
            m.get("numTargetDeletionVectorsAdded", m.get("numDeletionVectorsAdded", 0))
        )
    return totals


def version_of(spark, uri: str) -> int:
    from delta.tables import DeltaTable

    return DeltaTable.forPath(spark, uri).history(1).collect()[0]["version"]


def jvm_peak_rss_mib() -> float:
    """Peak resident memory (VmHWM) of the Spark JVM this process started."""
    from bench.large_file import spark_jvm_rss_kb

    return spark_jvm_rss_kb("VmHWM") / 1024


def worker(letter: str, data: Path, work: Path, targets: list[int], growth: bool) -> dict:
    from dagster_pyspark.resources import spark_session_from_config

    from order_tracking.engine import local_spark_config

    config = local_spark_config() | {"spark.sql.warehouse.dir": str(work / "warehouse")}
    spark = spark_session_from_config(config)
    spark.sparkContext.setLogLevel("ERROR")
    contender = CONTENDERS[letter](spark, work)
    result = {"name": contender.name, "merges": {}}

    # Warm-up, untimed: a small day through the same stage and merge, so that class loading,
    # code generation and Delta's first-commit costs of a new JVM land on no contender's figures.
    warm_target = contender.build_target(WARM_UP_ROWS, "warm_up")
    warm_day = data / f"warm_up/{DAY_KEY}/orders_{DAY}.csv"
    contender.stage(_private_copy(warm_day, work / "warm_up"), warm_target)
    contender.merge(warm_target)

    # Throughput: the big day into a target of the smallest size.
    target = contender.build_target(targets[0], "throughput")
    day_file = data / f"throughput/{DAY_KEY}/orders_{DAY}.csv"
    started = time.monotonic()
    contender.stage(_private_copy(day_file, work / "throughput"), target)
    result["stage_s"] = time.monotonic() - started
    before = version_of(spark, target)
    started = time.monotonic()
    contender.merge(target)
    result["merge_s"] = time.monotonic() - started
    result["throughput_files"] = last_operations(spark, target, before)
    actual = spark.read.format("delta").load(target).select(*BUSINESS)
    expected = expected_table(spark, targets[0], day_file)
    result["wrong_rows"] = actual.exceptAll(expected).count() + expected.exceptAll(actual).count()
    result["rows"] = actual.count()
    result["expected_rows"] = expected.count()

    # Growth: a fixed-size day into each target size (only the MERGE is timed).
    for rows in targets if growth else []:
        target = contender.build_target(rows, f"growth_{rows}")
        day_file = data / f"growth_{rows}/{DAY_KEY}/orders_{DAY}.csv"
        contender.stage(_private_copy(day_file, work / f"growth_{rows}"), target)
        before = version_of(spark, target)
        started = time.monotonic()
        contender.merge(target)
        result["merges"][rows] = {"merge_s": time.monotonic() - started, **last_operations(spark, target, before)}
    result["peak_jvm_rss_mib"] = jvm_peak_rss_mib()
    spark.stop()
    return result


def _private_copy(day_file: Path, folder: Path) -> Path:
    """Each contender gets its own copy of the day's file (ours moves it out of landing)."""
    import shutil

    copy = folder / "landing" / day_file.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(day_file, copy)
    return copy


# ---------------------------------------------------------------------------------------------
# Orchestration and report


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size (0.1 for a quick run)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--contenders", default="ABC")
    parser.add_argument("--no-growth", action="store_true", help="only the 1M-row day (no 5M/20M targets)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / f"{date.today()}.md"))
    args = parser.parse_args()
    big_day = int(1_000_000 * args.scale)
    fixed_day = int(100_000 * args.scale)
    targets = [int(n * args.scale) for n in (1_000_000, 5_000_000, 20_000_000)]

    if args.worker:
        result = worker(args.worker, Path(args.data), Path(args.work), targets, growth=not args.no_growth)
        print("RESULT " + json.dumps(result))
        return 0

    base = ROOT / "bench" / "data"
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="upsert_", dir=base) as tmp:
        data = Path(tmp) / "data"
        started = time.monotonic()
        write_day(data / f"warm_up/{DAY_KEY}/orders_{DAY}.csv", WARM_UP_ROWS, WARM_UP_ROWS, args.seed + 2)
        write_day(data / f"throughput/{DAY_KEY}/orders_{DAY}.csv", targets[0], big_day, args.seed)
        for rows in targets if not args.no_growth else []:
            write_day(data / f"growth_{rows}/{DAY_KEY}/orders_{DAY}.csv", rows, fixed_day, args.seed + 1)
        print(f"generated the day files in {time.monotonic() - started:.0f} s", flush=True)
        results = {}
        for letter in args.contenders:
            started = time.monotonic()
            completed = subprocess.run(
                [sys.executable, __file__, "--worker", letter, "--data", str(data), "--work",
                 str(Path(tmp) / letter), "--scale", str(args.scale), "--seed", str(args.seed)]
                + (["--no-growth"] if args.no_growth else []),
                capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(ROOT)},
            )
            lines = [x for x in completed.stdout.splitlines() if x.startswith("RESULT ")]
            if completed.returncode != 0 or not lines:
                print(completed.stderr[-5000:], file=sys.stderr)
                return 1
            results[letter] = json.loads(lines[-1].removeprefix("RESULT "))
            print(f"{letter}: done in {time.monotonic() - started:.0f} s", flush=True)
    report = render(results, big_day, fixed_day, targets, args)
    print(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report)
    print(f"written to {args.out}")
    return 0


def render(results: dict, big_day: int, fixed_day: int, targets: list[int], args) -> str:
    first, last = str(targets[0]), str(targets[-1])
    growth = not args.no_growth
    lines = [
        f"# Upsert benchmark, {date.today()}",
        "",
        f"`bench/upsert.py --scale {args.scale} --seed {args.seed}{' --no-growth' if not growth else ''}` on "
        f"{os.cpu_count()} cores; local Spark 4.0.5 + Delta 4.0.1, the project's local session settings, each "
        f"contender in its own JVM, warmed up with an untimed {WARM_UP_ROWS:,}-row day.",
        f"Throughput: a {big_day:,}-row day into a {targets[0]:,}-row target."
        + (
            f" Growth: a {fixed_day:,}-row day into {', '.join(f'{t:,}' for t in targets)}-row targets (MERGE only)."
            if growth
            else ""
        ),
        "",
        "| contender | stage s | merge s | stage rows/s | merge rows/s | stage + merge rows/s | "
        + "".join(f"MERGE into {t:,} (s) | " for t in targets if growth)
        + (f"growth {targets[-1] // max(targets[0], 1)}x target | files removed / added / DVs (largest) | " if growth else "")
        + "peak JVM RSS | correct |",
        "|---|---|---|---|---|---|" + "---|" * (len(targets) + 2 if growth else 0) + "---|---|",
    ]
    for r in results.values():
        correct = "yes" if r["wrong_rows"] == 0 else f"**no**: {r['wrong_rows']:,} rows differ ({r['rows']:,} rows, expected {r['expected_rows']:,})"
        row = (
            f"| {r['name']} | {r['stage_s']:.1f} | {r['merge_s']:.1f} | {big_day / r['stage_s']:,.0f} | "
            f"{big_day / r['merge_s']:,.0f} | {big_day / (r['stage_s'] + r['merge_s']):,.0f} | "
        )
        if growth:
            merges = r["merges"]
            files = merges[last]
            row += "".join(f"{merges[str(t)]['merge_s']:.1f} | " for t in targets)
            row += (
                f"{merges[last]['merge_s'] / merges[first]['merge_s']:.2f}x | "
                f"{files['files_removed']} / {files['files_added']} / {files['deletion_vectors_added']} | "
            )
        lines.append(row + f"{r['peak_jvm_rss_mib']:,.0f} MiB | {correct} |")
    a, c = results.get("A"), results.get("C")
    if a and c:
        ratio = (a["stage_s"] + a["merge_s"]) / (c["stage_s"] + c["merge_s"])
        lines += ["", f"- C's throughput (stage + merge) is {ratio:.2f}x A's (target ≥ 0.8x): " + ("met." if ratio >= 0.8 else "**not met**.")]
    if c and growth:
        c_growth = c["merges"][last]["merge_s"] / c["merges"][first]["merge_s"]
        lines.append(
            f"- C's MERGE time grows {c_growth:.2f}x from {targets[0]:,} to {targets[-1]:,} rows "
            "(target ≤ 1.5x): " + ("met." if c_growth <= 1.5 else "**not met**.")
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
