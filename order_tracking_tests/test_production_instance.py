"""The production instance as shipped (deploy/dagster.production.yaml), run for real: runs, event
logs and pool slots in a throwaway PostgreSQL cluster (order_tracking_devtools/postgres.py), step
logs in GCS (the suite's fake-gcs-server). The file is copied unchanged; only its DAGSTER_PG_* and
DAGSTER_COMPUTE_LOG_BUCKET variables point at the local servers.

On SQLite, two runs' steps once claimed a pool's single slot at the same instant
(test_concurrency.py tolerates it: writers that meet are safe). On PostgreSQL a claim is a
transaction: the steps of runs started together take turns.
"""

import os
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

from order_tracking.assets.pipeline import DAILY_ASSETS
from order_tracking.catalog import ORDER_TRACKING, RAW_FILE_LEDGER
from order_tracking.sample_data import land_sample_files
from order_tracking_devtools import postgres
from order_tracking_devtools.dagster_processes import ROOT
from order_tracking_devtools.databricks_standin.operator import materialize_command
from order_tracking_tests.helpers import business_rows, sample_days_oracle

PRODUCTION = ROOT / "deploy" / "dagster.production.yaml"
BUCKET = "order-tracking-compute-logs"
STEP = "order_tracking_pipeline"  # the one step of the daily assets, in pool order_tracking_writer


@dataclass
class Production:
    home: Path
    env: dict[str, str]  # what a host running the production instance sets
    cluster: postgres.Postgres

    @contextmanager
    def instance(self):
        with mock.patch.dict(os.environ, self.env), DagsterInstance.get() as instance:
            yield instance


@pytest.fixture(scope="module")
def production(tmp_path_factory, gcs_emulator):
    assert postgres.available(), "PostgreSQL is missing: `make test` installs Debian's postgresql package"
    from google.cloud import storage

    storage.Client(project="test").create_bucket(BUCKET)
    home = tmp_path_factory.mktemp("production") / "dagster_home"
    home.mkdir()
    shutil.copy(PRODUCTION, home / "dagster.yaml")
    with postgres.throwaway_cluster() as cluster:
        env = cluster.env() | {
            "DAGSTER_HOME": str(home),
            "DAGSTER_COMPUTE_LOG_BUCKET": BUCKET,
            "STORAGE_EMULATOR_HOST": gcs_emulator.url,
        }
        production = Production(home, env, cluster)
        with production.instance():  # creates the schema once, before runs race to
            pass
        yield production


def step_window(instance: DagsterInstance, run_id: str, step: str) -> tuple[float, float]:
    """When the step started and ended, from the run's event log."""
    records = instance.all_logs(
        run_id, of_type={DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE}
    )
    times = {r.dagster_event.event_type: r.timestamp for r in records if r.step_key == step}
    return times[DagsterEventType.STEP_START], max(
        times.get(DagsterEventType.STEP_SUCCESS, 0), times.get(DagsterEventType.STEP_FAILURE, 0)
    )


def test_runs_started_together_take_turns_in_the_pool(production, spark, tmp_path):
    """The runs that met on SQLite: day 2 twice (a sensor run and a backfill run of one day) and
    days 1 and 3, four `dagster asset materialize` processes started at once."""
    landing, lakehouse = tmp_path / "landing", tmp_path / "lakehouse"
    landed = land_sample_files(landing)
    env = os.environ | production.env | {
        "ORDER_TRACKING_LANDING_URI": str(landing),
        "ORDER_TRACKING_LAKEHOUSE_URI": str(lakehouse),
    }
    days = ["2023-01-01", "2023-01-02", "2023-01-02", "2023-01-03"]
    runs = [
        subprocess.Popen(
            materialize_command(day, select=",".join(DAILY_ASSETS)),
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        for day in days
    ]
    outputs = [run.communicate(timeout=900)[0] for run in runs]
    assert [run.returncode for run in runs] == [0] * len(days), "\n".join(o[-2000:] for o in outputs)

    with production.instance() as instance:
        records = instance.get_runs()
        assert len(records) == len(days)
        assert {r.status for r in records} == {DagsterRunStatus.SUCCESS}
        windows = sorted(step_window(instance, r.run_id, STEP) for r in records)
    # One slot: each step ends before the next one starts.
    for (_, ended), (started, _) in zip(windows, windows[1:]):
        assert ended <= started, windows

    table = spark.read.format("delta").load(str(lakehouse / ORDER_TRACKING.name))
    assert business_rows(table) == sample_days_oracle(3)
    ledger = spark.read.format("delta").load(str(lakehouse / RAW_FILE_LEDGER.name)).collect()
    assert sorted(e.file_name for e in ledger) == sorted(p.name for p in landed[:3])

    # Each run's step logs were uploaded to the bucket, as the UI reads them in production.
    from google.cloud import storage

    logs = [b.name for b in storage.Client(project="test").list_blobs(BUCKET, prefix="dagster/compute-logs")]
    for record in records:
        assert any(record.run_id in name for name in logs), (record.run_id, logs)
