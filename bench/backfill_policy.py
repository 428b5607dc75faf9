"""Benchmark (prints figures; not part of `make test`): the five sample days as five daily runs
versus one range run (BackfillPolicy.single_run), each run a `dagster asset materialize` process
attached to the warm engine, as the daemon launches runs.

    make bench-backfill       # or: PYTHONPATH=. .venv/bin/python bench/backfill_policy.py
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from order_tracking import engine
from order_tracking.sample_data import land_sample_files
from order_tracking_devtools.databricks_standin.operator import materialize_command

ROOT = Path(__file__).parents[1]
DAYS = [f"2023-01-0{day}" for day in range(1, 6)]


def run_all(work: Path, partitions: list[str]) -> list[float]:
    land_sample_files(work / "landing")
    (work / "home").mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", work / "home" / "dagster.yaml")
    env = os.environ | {
        "DAGSTER_HOME": str(work / "home"),
        "ORDER_TRACKING_DATA_DIR": str(work / "data"),
        "ORDER_TRACKING_LANDING_URI": str(work / "landing"),
        "ORDER_TRACKING_LAKEHOUSE_URI": str(work / "lakehouse"),
    }
    seconds = []
    # The runs attach to the warm engine of their data directory, started before the clock.
    with engine.running(work / "data" / "engine"):
        for partition in partitions:
            started = time.monotonic()
            completed = subprocess.run(
                materialize_command(partition), env=env, cwd=ROOT, capture_output=True, text=True
            )
            if completed.returncode != 0:
                sys.exit(f"{partition} failed:\n{completed.stderr[-3000:]}")
            seconds.append(time.monotonic() - started)
    return seconds


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench_backfill_") as tmp:
        daily = run_all(Path(tmp) / "daily", DAYS)
        ranged = run_all(Path(tmp) / "range", [f"{DAYS[0]}...{DAYS[-1]}"])
    print("five sample days, each run a new process attached to the warm engine (2 cores):")
    print(f"  one run per day : {sum(daily):6.0f} s  ({', '.join(f'{s:.0f}' for s in daily)} s)")
    print(f"  one run, range  : {sum(ranged):6.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
