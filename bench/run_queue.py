"""Benchmark (prints figures; not part of `make test`): run queue latency on the local instance
(SQLite, dagster.yaml) against the production instance (PostgreSQL, deploy/dagster.production.yaml),
each file as shipped, under `dagster dev` (webserver, daemon, code server).

    make bench-queue            # or: PYTHONPATH=. .venv/bin/python bench/run_queue.py

The job is arrival_freshness_job (our job that needs no Spark: it reads the instance's
materializations and the landing folder), so the figures are Dagster's and the storage's, not the
engine's. Runs are launched through GraphQL, as the UI's Launchpad does; the phases come from each
run's event log:
  launch  the launchRun mutation's round trip (the run written, enqueued)
  queued  enqueued -> starting   (the daemon's queued-run coordinator dequeues it, every
                                  dequeue_interval_seconds, default 5 s, and launches it)
  start   starting -> run started (a new Python process loads the code and opens the instance)
  run     started  -> success    (the step, and every event it writes to the storage)
Two patterns: one run at a time on an idle queue, then a burst of runs launched together (the
local file allows 2 runs at once, the production file 10). The PostgreSQL cluster is throwaway but
durable (fsync on), as a real server is.
"""

import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

from dagster import DagsterEventType, DagsterInstance

from order_tracking_devtools import postgres
from order_tracking_devtools.dagster_processes import (
    LOCAL_INSTANCE,
    PRODUCTION_INSTANCE,
    ROOT,
    running_dagster_dev,
)
from order_tracking_devtools.gcs_emulator import GcsEmulator, free_port
from order_tracking_devtools.ui import DagsterUI

JOB = "arrival_freshness_job"
ONE_AT_A_TIME, BURST = 8, 10
BUCKET = "bench-compute-logs"
PHASES = {
    DagsterEventType.RUN_ENQUEUED: "enqueued",
    DagsterEventType.RUN_STARTING: "starting",
    DagsterEventType.RUN_START: "started",
    DagsterEventType.RUN_SUCCESS: "success",
}


@contextmanager
def sqlite_instance():
    yield LOCAL_INSTANCE, {}


@contextmanager
def postgres_instance():
    with postgres.throwaway_cluster(fsync=True) as cluster:
        yield PRODUCTION_INSTANCE, cluster.env() | {"DAGSTER_COMPUTE_LOG_BUCKET": BUCKET}


def phases(home: Path, env: dict[str, str], run_ids: list[str]) -> list[dict[str, float]]:
    with mock.patch.dict(os.environ, env | {"DAGSTER_HOME": str(home)}), DagsterInstance.get() as instance:
        return [
            {PHASES[r.dagster_event.event_type]: r.timestamp for r in instance.all_logs(run_id, of_type=set(PHASES))}
            for run_id in run_ids
        ]


def summary(label: str, launches: list[float], records: list[dict[str, float]]) -> None:
    def figure(values: list[float]) -> str:
        return f"{statistics.median(values):6.2f} / {max(values):6.2f}"

    spans = {
        "queued": [r["starting"] - r["enqueued"] for r in records],
        "start": [r["started"] - r["starting"] for r in records],
        "run": [r["success"] - r["started"] for r in records],
        "total": [r["success"] - r["enqueued"] for r in records],
    }
    print(f"  {label:<22} launch {figure(launches)}   " + "   ".join(f"{k} {figure(v)}" for k, v in spans.items()))


def bench(name: str, instance_factory, work: Path, base_env: dict[str, str]) -> None:
    with ExitStack() as stack:
        instance_file, instance_env = stack.enter_context(instance_factory())
        home, env, port = work / f"home_{name}", base_env | instance_env, free_port()
        log = work / f"dagster_dev_{name}.log"
        process = stack.enter_context(running_dagster_dev(home, env, log, port, instance_file))
        ui = DagsterUI(f"http://127.0.0.1:{port}")
        ui.wait_until_ready(timeout=300, is_alive=lambda: process.poll() is None)

        def launch() -> tuple[str, float]:
            started = time.perf_counter()
            run_id = ui.launch_run(JOB, {})
            return run_id, time.perf_counter() - started

        ui.wait_for_run(launch()[0], timeout=300)  # warm-up: first imports, first connections

        one = []
        for _ in range(ONE_AT_A_TIME):
            run_id, seconds = launch()
            assert ui.wait_for_run(run_id, timeout=300) == "SUCCESS", log
            one.append((run_id, seconds))

        burst = [launch() for _ in range(BURST)]
        drained = time.perf_counter()
        statuses = [ui.wait_for_run(run_id, timeout=900) for run_id, _ in burst]
        assert set(statuses) == {"SUCCESS"}, (statuses, log)

        print(f"{name} ({instance_file.relative_to(ROOT)}), seconds, median / max:")
        summary(f"one at a time (x{ONE_AT_A_TIME})", [s for _, s in one], phases(home, env, [r for r, _ in one]))
        records = phases(home, env, [r for r, _ in burst])
        summary(f"burst of {BURST}", [s for _, s in burst], records)
        first, last = min(r["enqueued"] for r in records), max(r["success"] for r in records)
        print(f"  burst: all {BURST} done {last - first:.1f} s after the first was enqueued"
              f" (waited here {time.perf_counter() - drained:.1f} s)")


def main() -> int:
    emulator = GcsEmulator().start()
    work = Path(tempfile.mkdtemp(prefix="order_tracking_bench_queue_"))
    (work / "landing").mkdir()
    base_env = {
        "ORDER_TRACKING_LANDING_URI": str(work / "landing"),
        "ORDER_TRACKING_LAKEHOUSE_URI": str(work / "lakehouse"),
        "ORDER_TRACKING_DATA_DIR": str(work / "data"),
        "STORAGE_EMULATOR_HOST": emulator.url,
    }
    try:
        with mock.patch.dict(os.environ, {"STORAGE_EMULATOR_HOST": emulator.url}):
            from google.cloud import storage

            storage.Client(project="bench").create_bucket(BUCKET)
        print(f"run queue latency, {JOB} launched through GraphQL on dagster dev (2 cores)")
        bench("SQLite", sqlite_instance, work, base_env)
        bench("PostgreSQL", postgres_instance, work, base_env)
    finally:
        emulator.stop()
    print(f"(logs: {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
