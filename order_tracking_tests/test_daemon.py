"""Sensor-driven automation for real: the Dagster daemon, its sensors and queued runs, against
fake-gcs-server. Three sample files are uploaded one by one; the table must end exactly right and
the landing prefix empty. Then the fourth, whose late lines change day 3's figures: the
restatement sensor's run must bring day 3's table row and its Dagster metadata up to date."""

import time

import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from order_tracking.sample_data import sample_files
from order_tracking_devtools.dagster_processes import running_daemon, sensor_env
from order_tracking_tests.helpers import (
    KPI_NAMES,
    KPIS,
    LANDING_PREFIX as PREFIX,
    business_rows,
    sample_days_oracle,
    wait_for,
)

DAYS = 3


@pytest.fixture
def daemon(tmp_path, gcs_emulator, bucket):
    log = tmp_path / "daemon.log"
    env = sensor_env(f"gs://{bucket.name}/{PREFIX}", tmp_path, gcs_emulator.url)
    with running_daemon(tmp_path / "dagster_home", env, log):
        yield tmp_path / "lakehouse", log, tmp_path / "dagster_home"


def test_uploaded_files_flow_to_the_table_through_the_daemon(spark, bucket, daemon):
    lakehouse, log, home = daemon
    for path in sample_files()[:DAYS]:
        bucket.blob(f"{PREFIX}/{path.name}").upload_from_filename(str(path))
        time.sleep(1)

    def table_is(days):
        if list(bucket.list_blobs(prefix=PREFIX)) or not (lakehouse / "order_tracking" / "_delta_log").is_dir():
            return False
        return business_rows(spark.read.format("delta").load(str(lakehouse / "order_tracking"))) == sample_days_oracle(days)

    wait_for(lambda: table_is(DAYS), log, f"the table of {DAYS} days")

    # Day 4's file carries lines of day 3 (TRK1019-1021): day 3's figures change, and a run of
    # the restatement sensor's job must bring its row and its metadata up to date.
    def day_3_figures() -> list[tuple[str, dict]]:
        """Day 3's order_kpis_daily materializations, oldest first: (job, metadata)."""
        with DagsterInstance.from_config(str(home)) as instance:
            records = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=AssetKey("order_kpis_daily"), asset_partitions=["2023-01-03"]),
                limit=100,
                ascending=True,
            ).records
            return [
                (
                    instance.get_run_by_id(r.run_id).job_name,
                    {k: v.value for k, v in r.asset_materialization.metadata.items()},
                )
                for r in records
            ]

    def all_runs_done() -> bool:
        with DagsterInstance.from_config(str(home)) as instance:
            waiting = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, *IN_PROGRESS_RUN_STATUSES]
            return not instance.get_runs(RunsFilter(statuses=waiting))

    # Settled on three days (runs, and any restatement, finished): day 3 knows 21 orders.
    def settled_on_three_days() -> bool:
        figures = day_3_figures()
        return bool(figures) and all_runs_done() and figures[-1][1]["orders_known"] == 21

    wait_for(settled_on_three_days, log, "day 3's figures of three days")
    path = sample_files()[3]
    bucket.blob(f"{PREFIX}/{path.name}").upload_from_filename(str(path))

    def restated() -> bool:
        figures = day_3_figures()
        return bool(figures) and tuple(figures[-1][1].get(n) for n in KPI_NAMES) == KPIS["2023-01-03"]

    wait_for(lambda: table_is(DAYS + 1) and restated(), log, "day 3's figures restated")
    figures = day_3_figures()
    assert figures[-1][0] == "order_figures_job"
    kpis = spark.read.format("delta").load(str(lakehouse / "order_kpis_daily")).where("day = '2023-01-03'")
    assert tuple(kpis.first()[name] for name in KPI_NAMES) == KPIS["2023-01-03"]
