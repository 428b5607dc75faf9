"""Benchmark (prints figures; never part of `make test`): how long `explain` takes on the upsert
benchmark's largest table, on the warm engine, as `python -m order_tracking.explain` runs it.

    make bench-explain    # or: PYTHONPATH=. .venv/bin/python bench/explain.py [--rows 20000000]

The lakehouse: order_tracking, order_events and order_status_history of --rows orders (the upsert
benchmark's target rows, as if all had come in one base day), then one real day of --day-rows
lines (bench/upsert.py's day: updates, new orders, late lines, repeated keys) landed, staged,
merged and its history rebuilt through the pipeline's own functions. Timed, each twice (the
second time the engine has the tables' metadata in memory):
  - an order updated that day (its lines are read again from that day's raw file);
  - an order of the base day that no file of the raw zone holds (events, table and history only);
  - an unknown number (explain then looks for the closest known numbers over the whole table).
"""

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

from upsert import DAY, DAY_KEY, TARGET_FILE_ROWS, base_rows, write_day

from order_tracking import engine
from order_tracking.catalog import ORDER_EVENTS, ORDER_STATUS_HISTORY, ORDER_TRACKING
from order_tracking.daily import land_day, merge_day, stage_day
from order_tracking.explain import explain
from order_tracking.insights import rebuild_history
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.landing import LandingZone
from order_tracking.resources.spark import connect
from order_tracking.transforms.history import status_versions


def build(spark, root: Path, rows: int, day_rows: int) -> tuple[Lakehouse, str]:
    """The lakehouse (see the module's docstring); returns it and a number the day updated."""
    lakehouse = Lakehouse(uri=str(root / "lakehouse"))
    base = base_rows(spark, rows)
    for table, frame in (
        (ORDER_TRACKING, base),
        (ORDER_EVENTS, base),
        (ORDER_STATUS_HISTORY, status_versions(base, "bench-base")),
    ):
        started = time.perf_counter()
        uri = table.ensure(spark, lakehouse.table_uri(table))
        frame.write.format("delta").mode("append").option("maxRecordsPerFile", TARGET_FILE_ROWS).save(uri)
        print(f"{table.name}: {rows:,} rows written in {time.perf_counter() - started:.0f} s", flush=True)

    day_file = root / "landing" / f"orders_{DAY}.csv"
    write_day(day_file, rows, day_rows, seed=11)
    updated = day_file.read_text().splitlines()[1].split(",")[1]
    started = time.perf_counter()
    run_id = uuid.uuid4().hex
    landing = LandingZone(uri=str(root / "landing"))
    land_day(spark, landing, lakehouse, DAY_KEY, landing.list_files(), run_id)
    report = stage_day(spark, lakehouse, DAY_KEY, run_id)
    merge_day(spark, lakehouse, DAY_KEY, run_id, report.staged)
    rebuild_history(spark, lakehouse, DAY_KEY, DAY_KEY, run_id)
    print(f"a {day_rows:,}-line day landed, staged, merged, history rebuilt in {time.perf_counter() - started:.0f} s", flush=True)
    return lakehouse, updated


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--day-rows", type=int, default=100_000)
    args = parser.parse_args()
    with engine.running() as endpoint, tempfile.TemporaryDirectory() as work:
        spark = connect(endpoint.url)
        lakehouse, updated = build(spark, Path(work), args.rows, args.day_rows)
        cases = [
            ("updated on the day", updated),
            ("base day only", "TRK000000042"),
            ("unknown", "TRK00000004X2"),
        ]
        print(f"\n{'order':<22}{'number':<16}{'first s':>9}{'again s':>9}{'lines':>7}  outcome")
        for label, number in cases:
            timings = []
            for _ in range(2):
                started = time.perf_counter()
                explanation = explain(spark, lakehouse, number)
                timings.append(time.perf_counter() - started)
            outcome = (
                f"current: {explanation.current['status']}" if explanation.current
                else f"never received; closest: {', '.join(explanation.closest) or 'none'}"
            )
            print(f"{label:<22}{number:<16}{timings[0]:>9.1f}{timings[1]:>9.1f}{len(explanation.lines):>7}  {outcome}")
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
