"""Benchmark (prints figures; never part of `make test`): what the insight work costs per day, next
to the day's pipeline, on the warm engine.

    make bench-insights    # or: PYTHONPATH=. .venv/bin/python bench/insights.py [--rows 1000000]

1. The five sample days, day by day: seconds of land + stage + merge (the pipeline step, whose
   staging now also writes order_events) and of rebuild_history + compute_figures (the insight
   step), per day.
2. Two large days of --rows lines each (half of the second day's orders are the first day's, 1 line
   in 7 repeats an order with a newer timestamp): the same two figures for each, the history
   rebuild reading every event of the touched orders.
"""

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

from order_tracking import engine
from order_tracking.daily import land_day, merge_day, stage_day
from order_tracking.insights import compute_figures, rebuild_history
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.landing import LandingZone
from order_tracking.resources.spark import connect
from order_tracking.sample_data import land_sample_files

HEADER = "order_num,tracking_num,pck_recieved_date,package_deliver_date,status,address,last_update_timestamp"
STATUSES = ("Order Placed", "In Transit", "Delayed", "Out for Delivery", "Delivered", "Returned")


def write_day(path: Path, day: int, rows: int, offset: int) -> None:
    """`rows` lines for 2023-01-0<day>: orders offset..offset+rows, 1 in 7 lines repeating an order."""
    with path.open("w", buffering=8 << 20) as out:
        out.write(HEADER + "\n")
        for line in range(rows):
            n = offset + (line if line % 7 else line // 2)
            status = STATUSES[(n + day + line % 2) % len(STATUSES)]
            out.write(
                f"{n},TRK{n:09d},2023-01-0{day},2023-01-0{day + 3},{status},{n % 997} Elm St,"
                f"2023-01-0{day} {line % 24:02d}:{line % 60:02d}:{(line // 60) % 60:02d}\n"
            )


def one_day(spark, landing, lakehouse, day: str) -> tuple[float, float]:
    run_id = uuid.uuid4().hex
    started = time.perf_counter()
    land_day(spark, landing, lakehouse, day, landing.list_files(), run_id)
    report = stage_day(spark, lakehouse, day, run_id)
    merge_day(spark, lakehouse, day, run_id, report.staged)
    pipeline = time.perf_counter() - started
    started = time.perf_counter()
    rebuild_history(spark, lakehouse, day, day, run_id)
    compute_figures(spark, lakehouse, day, day)
    return pipeline, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with engine.running() as endpoint, tempfile.TemporaryDirectory() as work:
        spark = connect(endpoint.url)
        root = Path(work)
        print(f"{'day':<24}{'pipeline s':>12}{'insights s':>12}")
        landing, lakehouse = LandingZone(uri=str(root / "landing")), Lakehouse(uri=str(root / "lakehouse"))
        land_sample_files(root / "landing")
        for day in range(1, 6):
            pipeline, insights = one_day(spark, landing, lakehouse, f"2023-01-0{day}")
            print(f"{f'sample 2023-01-0{day}':<24}{pipeline:>12.1f}{insights:>12.1f}")

        landing, lakehouse = LandingZone(uri=str(root / "big_landing")), Lakehouse(uri=str(root / "big"))
        (root / "big_landing").mkdir()
        for day, offset in ((1, 0), (2, args.rows // 2)):
            write_day(root / "big_landing" / f"orders_2023_01_0{day}.csv", day, args.rows, offset)
            pipeline, insights = one_day(spark, landing, lakehouse, f"2023-01-0{day}")
            print(f"{f'{args.rows:,} rows 2023-01-0{day}':<24}{pipeline:>12.1f}{insights:>12.1f}")
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
