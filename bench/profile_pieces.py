"""Where C's time goes (prints figures; never part of `make test`): the pieces of our staging and
MERGE timed alone, in one warm session, on a generated day of `bench/upsert.py`.

    make bench-pieces         # or: PYTHONPATH=. .venv/bin/python bench/profile_pieces.py [--scale 0.1]

Each piece runs --repeat times; the minimum is the figure to compare (this machine varies by
20-30 % from one run to the next), the first run shows what a new JVM pays. Parse pieces end in
a noop write, so they are timed without any storage; the MERGE is undone between runs with a
Delta RESTORE, so each run merges the same day into the same target.
"""

import argparse
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.upsert import DAY, DAY_KEY, Ours, write_day

ROOT = Path(__file__).parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0, help="a 1M-row day and target times this")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rows = int(1_000_000 * args.scale)

    from dagster_pyspark.resources import spark_session_from_config
    from delta.tables import DeltaTable

    from order_tracking.catalog import RAW_FILE_LEDGER
    from order_tracking.daily import land_day, merge_day, stage_day
    from order_tracking.engine import local_spark_config
    from order_tracking.raw_zone import read_ledger
    from order_tracking.resources.landing import LandingZone
    from order_tracking.transforms import parse

    base = ROOT / "bench" / "data"
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="pieces_", dir=base))
    try:
        day_file = work / "landing" / f"orders_{DAY}.csv"
        write_day(day_file, rows, rows, args.seed)
        spark = spark_session_from_config(local_spark_config() | {"spark.sql.warehouse.dir": str(work / "wh")})
        spark.sparkContext.setLogLevel("ERROR")
        ours = Ours(spark, work)
        target = ours.build_target(rows, "pieces")
        lakehouse = ours._lakehouse(target)
        landing = LandingZone(uri=str(day_file.parent))
        ledger_uri = lakehouse.table_uri(RAW_FILE_LEDGER)
        figures: list[tuple[str, list[float]]] = []

        def timed(label, piece, before=None):
            runs = []
            for _ in range(args.repeat):
                if before:
                    before()
                started = time.monotonic()
                piece()
                runs.append(time.monotonic() - started)
            figures.append((label, runs))
            print(f"{label}: min {min(runs):.1f} s", flush=True)

        def noop(frame):
            frame.write.format("noop").mode("overwrite").save()

        started = time.monotonic()
        land_day(spark, landing, lakehouse, DAY_KEY, landing.list_files(), "pieces")
        figures.append(("ingest (raw copy, md5, ledger MERGE), once", [time.monotonic() - started]))

        files = [
            parse.RawFile(lakehouse.uri_of(e.raw_path), e.raw_path, e.landed_at)
            for e in read_ledger(spark, ledger_uri, DAY_KEY)
        ]
        headers = parse.file_headers(spark, files)
        timed("text read (noop)", lambda: noop(spark.read.text(files[0].uri)))
        timed("numbered lines (noop)", lambda: noop(parse.read_numbered_lines(spark, files)))
        timed(
            "records: numbered lines, multi-line records joined, with its check",
            lambda: noop(parse.read_records(spark, files, headers)),
        )
        lines = parse.read_records(spark, files, headers)
        classified = parse.classify_lines(spark, lines, headers, DAY_KEY)
        timed("classify_lines (noop)", lambda: noop(classified))
        timed("stage_day", lambda: stage_day(spark, lakehouse, DAY_KEY, "pieces"))

        before = DeltaTable.forPath(spark, target).history(1).collect()[0]["version"]
        timed(
            "merge_day (target restored before each run)",
            lambda: merge_day(spark, lakehouse, DAY_KEY, "pieces"),
            before=lambda: DeltaTable.forPath(spark, target).restoreToVersion(before),
        )
        spark.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nPieces on a {rows:,}-row day into a {rows:,}-row target, "
          f"{datetime.now(timezone.utc):%Y-%m-%d}, {args.repeat} runs each\n")
    print("| piece | min s | runs (s) |\n|---|---|---|")
    for label, runs in figures:
        print(f"| {label} | {min(runs):.1f} | {' / '.join(f'{r:.1f}' for r in runs)} |")


if __name__ == "__main__":
    main()
