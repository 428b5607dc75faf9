"""Benchmark (prints figures; not part of `make test`): the sensor's tick time, and how long a
landed file takes to reach order_tracking through the daemon, against fake-gcs-server.

    make bench-gcs            # or: PYTHONPATH=. .venv/bin/python bench/gcs_sensor.py
"""

import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, build_sensor_context
from google.cloud import storage

from order_tracking import engine
from order_tracking.definitions import defs
from order_tracking.resources.landing import LandingZone
from order_tracking_devtools.dagster_processes import running_daemon, sensor_env
from order_tracking_devtools.gcs_emulator import GcsEmulator

HEADER = "order_num,tracking_num,pck_recieved_date,package_deliver_date,status,address,last_update_timestamp"
PROCESSED, WAITING, TICKS, LATENCY_FILES = 10_000, 5, 20, 10


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def order_file(day: date, n: int) -> bytes:
    rows = [f"{9000 + n},BENCH{n},{day},{day},In Transit,1 Bench St,{day} 12:00:00"]
    return ("\n".join([HEADER, *rows]) + "\n").encode()


def tick_times(bucket, prefix: str) -> list[float]:
    sensor = defs.resolve_sensor_def("order_files_sensor")
    landing = LandingZone(uri=f"gs://{bucket.name}/{prefix}")
    times = []
    with DagsterInstance.ephemeral() as instance:
        for _ in range(TICKS):
            context = build_sensor_context(
                instance=instance, resources={"landing": landing}, definitions=defs
            )
            start = time.perf_counter()
            sensor.evaluate_tick(context)
            times.append(time.perf_counter() - start)
    return times


def bench_ticks(client) -> None:
    bucket = client.create_bucket("bench-ticks")
    # Processed files have left landing: they live in the raw zone, under another prefix.
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(
            lambda i: bucket.blob(f"lake/raw/dt=2023-01-{1 + i % 28:02d}/f{i}.csv").upload_from_string(b"x"),
            range(PROCESSED),
        ))
        list(pool.map(
            lambda i: bucket.blob(f"incoming/order_tracking_2023_02_{1 + i:02d}.csv").upload_from_string(b"x"),
            range(WAITING),
        ))
    ours = tick_times(bucket, "incoming")
    # For contrast: the same tick if processed files stayed in landing (the prefix lists them all).
    contrast = tick_times(bucket, "")
    print(f"sensor tick, {PROCESSED} processed + {WAITING} waiting ({TICKS} ticks):")
    print(f"  landing prefix only      p50 {1000 * statistics.median(ours):7.1f} ms   p95 {1000 * percentile(ours, .95):7.1f} ms")
    print(f"  if processed files stayed p50 {1000 * statistics.median(contrast):7.1f} ms   p95 {1000 * percentile(contrast, .95):7.1f} ms")


def bench_latency(client, emulator) -> None:
    bucket = client.create_bucket("bench-latency")
    work = Path(tempfile.mkdtemp(prefix="order_tracking_bench_"))
    env = sensor_env(f"gs://{bucket.name}/incoming", work, emulator.url)
    landed: dict[str, tuple[str, float]] = {}
    home = work / "dagster_home"
    # The engine starts with the daemon (a file landing after an idle spell would also pay its
    # start, 10-15 s) and is stopped at the end, so the benchmark leaves nothing running.
    with running_daemon(home, env, work / "daemon.log"), engine.running(work / "data" / "engine"):
        time.sleep(15)  # let the daemon load the code location
        for n in range(LATENCY_FILES):
            day = date(2023, 2, 1) + timedelta(days=n)
            name = f"order_tracking_{day:%Y_%m_%d}.csv"
            bucket.blob(f"incoming/{name}").upload_from_string(order_file(day, n))
            landed[name] = (day.isoformat(), time.time())
            time.sleep(20)  # a steady trickle, one file every 20 s
        arrived = wait_for_rows(home, landed)
    latencies = [arrived[n] - landed[n][1] for n in landed if n in arrived]
    print(f"landed-to-target latency over {len(latencies)}/{len(landed)} files (one every 20 s, "
          f"max 2 concurrent runs): p50 {statistics.median(latencies):.1f} s   p95 {percentile(latencies, .95):.1f} s"
          f"   max {max(latencies):.1f} s   each: {', '.join(f'{s:.0f}' for s in latencies)} s")
    print(f"(daemon log: {work / 'daemon.log'})")


def wait_for_rows(home: Path, landed: dict[str, tuple[str, float]], timeout: float = 900) -> dict[str, float]:
    """When each file's partition was materialized in order_tracking (from the instance's event
    log, so the benchmark reads no table and starts no Spark of its own)."""
    arrived: dict[str, float] = {}
    deadline = time.time() + timeout
    os.environ["DAGSTER_HOME"] = str(home)
    with DagsterInstance.get() as instance:
        while len(arrived) < len(landed) and time.time() < deadline:
            for name, (partition, _) in landed.items():
                if name in arrived:
                    continue
                records = instance.fetch_materializations(
                    AssetRecordsFilter(asset_key=AssetKey("order_tracking"), asset_partitions=[partition]),
                    limit=1,
                ).records
                if records:
                    arrived[name] = records[0].timestamp
            time.sleep(2)
    return arrived


def main() -> int:
    emulator = GcsEmulator().start()
    os.environ["STORAGE_EMULATOR_HOST"] = emulator.url
    try:
        client = storage.Client(project="bench")
        bench_ticks(client)
        if "--ticks-only" not in sys.argv:
            bench_latency(client, emulator)
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
