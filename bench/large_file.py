"""Benchmark (prints figures; not part of `make test`): one very large order file through
raw_order_files and staged_orders with a capped Spark driver, to show the file is streamed and
split, never collected to the driver.

    make bench-large          # or: PYTHONPATH=. .venv/bin/python bench/large_file.py --gb 1.0

Local Spark runs driver and executors in one JVM, so the cap (`--driver-memory`, default 1g)
bounds the whole computation: a plan that collected the file would fail with OutOfMemoryError.
The peak resident memory of the Spark JVM is sampled from /proc while the runs go.
"""

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from dagster import DagsterInstance, materialize
from dagster_pyspark import PySparkResource

from order_tracking.assets import order_tracking_pipeline
from order_tracking.environment import Environment
from order_tracking.resources import resources_for
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.landing import LandingZone
from order_tracking.engine import local_spark_config

HEADER = "order_num,tracking_num,pck_recieved_date,package_deliver_date,status,address,last_update_timestamp"
STATUSES = ("Shipped", "In Transit", "Out for Delivery", "Delivered", "Returned")


def write_file(path: Path, target_bytes: int) -> int:
    """A day's file: 1 in 7 lines repeats an earlier tracking_num with a newer timestamp, 1 in
    10,000 lines is malformed."""
    lines = 0
    with path.open("w", buffering=8 << 20) as out:
        out.write(HEADER + "\n")
        while out.tell() < target_bytes:
            chunk = []
            for _ in range(10_000):
                n = lines if lines % 7 else lines // 2
                if lines % 10_000 == 9_999:
                    chunk.append(f"{lines},TRK{n:09d},not-a-date,,Shipped,1 Main St,2023-01-05 10:00:00")
                else:
                    chunk.append(
                        f"{100000 + n},TRK{n:09d},2023-01-05,2023-01-0{5 + n % 4},"
                        f"{STATUSES[n % 5]},{n % 997} Elm Street Apt {n % 89},"
                        f"2023-01-05 {n % 24:02d}:{n % 60:02d}:{lines % 60:02d}"
                    )
                lines += 1
            out.write("\n".join(chunk) + "\n")
    return lines


def spark_jvm_rss_kb(field: str = "VmRSS") -> int:
    """Resident memory of the Spark JVM started by this process, from /proc (0 if none yet);
    field "VmHWM" gives its peak instead."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            status = (proc / "status").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"org.apache.spark.deploy.SparkSubmit" in cmdline and f"PPid:\t{os.getpid()}\n" in status:
            return int(next(line.split()[1] for line in status.splitlines() if line.startswith(field)))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--driver-memory", default="1g")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_large_"))
    landing = work / "landing"
    landing.mkdir()
    started = time.monotonic()
    lines = write_file(landing / "order_tracking_2023_01_05.csv", int(args.gb * 1024**3))
    size = (landing / "order_tracking_2023_01_05.csv").stat().st_size
    print(f"generated {size / 1024**3:.2f} GiB, {lines:,} lines in {time.monotonic() - started:.0f} s")

    config = local_spark_config() | {
        "spark.driver.memory": args.driver_memory,
        "spark.sql.warehouse.dir": str(work / "warehouse"),
    }
    resources = {
        **resources_for(Environment.LOCAL),
        "pyspark": PySparkResource(spark_config=config),
        "landing": LandingZone(uri=str(landing)),
        "lakehouse": Lakehouse(uri=str(work / "lakehouse")),
    }
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], spark_jvm_rss_kb())
            time.sleep(0.5)

    threading.Thread(target=sample, daemon=True).start()
    with DagsterInstance.ephemeral() as instance:
        for asset in ("raw_order_files", "staged_orders"):
            t = time.monotonic()
            result = materialize(
                [order_tracking_pipeline], selection=[asset], partition_key="2023-01-05",
                resources=resources, instance=instance,
            )  # fmt: skip
            if not result.success:
                print(f"{asset} failed", file=sys.stderr)
                return 1
            [event] = result.get_asset_materialization_events()
            metadata = event.materialization.metadata
            shown = {k: v.value for k, v in metadata.items() if isinstance(v.value, (int, float))}
            print(f"{asset}: {time.monotonic() - t:.0f} s {shown}")
    done.set()
    print(f"driver memory cap {args.driver_memory}; peak Spark JVM RSS {peak[0] / 1024:.0f} MiB")
    print(f"work folder (delete when done): {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
