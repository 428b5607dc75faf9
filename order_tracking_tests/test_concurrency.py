"""Runs started together (a backfill plus sensor runs, or the same day twice): no lost update, no
duplicate.

- Dagster pools: with the instance configuration we ship (dagster.yaml), the pipeline step (raw
  zone, staging and order_tracking) waits for its pool's single slot.
- Writers that meet anyway are safe: a pool is only as strict as the instance storage (on SQLite
  two claims can race; see the README), staged days are written side by side, and an instance
  may lack the pool limits. A Delta commit that loses a race is retried on the new version, the
  ledger records a file only if it is not recorded yet, and a raw path written by a concurrent
  run is reused when it holds the same bytes.
"""

import os
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus
from pyspark.sql import functions as F

from order_tracking import schema
from order_tracking.assets.pipeline import DAILY_ASSETS, ORDER_TRACKING_WRITER_POOL
from order_tracking.catalog import ORDER_EVENTS, ORDER_TRACKING, QUARANTINED_ORDERS, RAW_FILE_LEDGER, STAGED_ORDERS
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.landing import LandingZone
from order_tracking.sample_data import land_sample_files
from order_tracking.daily import land_day, land_days, merge_day, stage_day, stage_days
from order_tracking.delta import (
    sequenced_merge,
    summarize_source,
)
from order_tracking_devtools.databricks_standin.operator import materialize_command
from order_tracking_tests.helpers import (
    HEADER,
    at,
    business_rows,
    land,
    materialize_day,
    oracle,
    sample_days_oracle,
)

SHIPPED_INSTANCE_CONFIG = Path(__file__).parents[1] / "dagster.yaml"
STEP = "order_tracking_pipeline"
STEP_ASSETS = ",".join(DAILY_ASSETS)  # the assets of that one step


def test_runs_started_together_without_a_pool_record_and_merge_each_file_once(
    spark, new_session, landing_dir, lakehouse_dir
):
    """The worst case: no pool at all. Four runs (day 2 twice, as a sensor run plus a backfill
    run) do the assets' work at the same moment, each in its own Spark session."""
    landed = land_sample_files(landing_dir)
    landing, lakehouse = LandingZone(uri=str(landing_dir)), Lakehouse(uri=str(lakehouse_dir))
    days = ["2023-01-01", "2023-01-02", "2023-01-02", "2023-01-03"]
    start = threading.Barrier(len(days), timeout=120)

    sessions = [new_session() for _ in days]

    def run(day: str, session) -> None:
        start.wait()
        materialize_day(session, landing, lakehouse, day)

    with ThreadPoolExecutor(len(days)) as pool:
        list(pool.map(run, days, sessions))

    table = spark.read.format("delta").load(str(lakehouse_dir / ORDER_TRACKING.name))
    assert business_rows(table) == sample_days_oracle(3)
    ledger = spark.read.format("delta").load(str(lakehouse_dir / RAW_FILE_LEDGER.name)).collect()
    assert sorted(e.file_name for e in ledger) == sorted(p.name for p in landed[:3])
    assert sorted(p.name for p in landing_dir.iterdir()) == sorted(p.name for p in landed[3:])


def test_a_pooled_step_waits_for_its_pool_slot(landing_dir, lakehouse_dir, tmp_path):
    """With the shipped instance configuration, the pipeline step does not start while another
    run holds the order_tracking_writer slot, and starts once it is released. The waiting run is
    a `dagster asset materialize` process, as a sensor's or an operator's run is: a run executed
    in the test's own process left its compute-log capture (`tail -F`) running after the suite."""
    home = instance_home(tmp_path)
    land_sample_files(landing_dir)
    with DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(ORDER_TRACKING_WRITER_POOL)
        assert storage.get_concurrency_info(ORDER_TRACKING_WRITER_POOL).slot_count == 1  # dagster.yaml
        storage.claim_concurrency_slot(ORDER_TRACKING_WRITER_POOL, "another-run", STEP)

        env = os.environ | {
            "DAGSTER_HOME": str(home),
            "ORDER_TRACKING_LANDING_URI": str(landing_dir),
            "ORDER_TRACKING_LAKEHOUSE_URI": str(lakehouse_dir),
        }
        waiting = subprocess.Popen(
            materialize_command("2023-01-01", select=STEP_ASSETS),
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 300
            while storage.get_concurrency_info(ORDER_TRACKING_WRITER_POOL).pending_step_count == 0:
                assert waiting.poll() is None, waiting.communicate()[0][-3000:]
                assert time.monotonic() < deadline, "the step never asked for its pool's slot"
                time.sleep(0.2)
            [run] = instance.get_runs()
            assert not started(instance, run.run_id, STEP)
            released = time.time()
            storage.free_concurrency_slots_for_run("another-run")
            output = waiting.communicate(timeout=600)[0]
        finally:
            if waiting.poll() is None:
                waiting.kill()
                waiting.wait()

        assert waiting.returncode == 0, output[-3000:]
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.SUCCESS
        assert started(instance, run.run_id, STEP) >= released


def instance_home(tmp_path: Path) -> Path:
    """A DAGSTER_HOME with the instance configuration we ship, storage created once up front."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(SHIPPED_INSTANCE_CONFIG, home / "dagster.yaml")
    DagsterInstance.from_config(str(home)).dispose()
    return home


def started(instance: DagsterInstance, run_id: str, step: str) -> float | None:
    for record in instance.all_logs(run_id, of_type=DagsterEventType.STEP_START):
        if record.step_key == step:
            return record.timestamp
    return None


def staged_rows(spark, day: int, status: str):
    """One staged row for TRK1 on `day` (newer each day), shaped like staged_orders."""
    return spark.range(1).select(
        *[
            {
                schema.ORDER_NUM: F.lit(1).cast("bigint"),
                schema.TRACKING_NUM: F.lit("TRK1"),
                schema.STATUS: F.lit(status),
                schema.LAST_UPDATE: F.lit(f"2023-01-0{day} 12:00:00").cast("timestamp"),
                schema.SOURCE_FILE: F.lit(f"raw/dt=2023-01-0{day}/f.csv"),
                schema.SOURCE_LINE: F.lit(2).cast("bigint"),
                schema.LANDED_AT: F.lit(f"2023-01-0{day} 13:00:00").cast("timestamp"),
                schema.PARTITION_DATE: F.lit(f"2023-01-0{day}").cast("date"),
            }
            .get(field.name, F.lit(None))
            .cast(field.dataType)
            .alias(field.name)
            for field in schema.ORDER_TRACKING_SCHEMA.fields
        ]
    )


def held_until(frame, gate: Path):
    """`frame`, but its first read blocks (in a Python worker) until `gate` exists."""

    def wait(_: int) -> bool:
        import time

        deadline = time.monotonic() + 120
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return True

    return frame.where(F.udf(wait, "boolean").asNondeterministic()(F.lit(1)))


def test_a_merge_that_loses_the_race_is_retried_on_the_new_version(spark, new_session, tmp_path, caplog):
    """No pool here: MERGE A reads the table, MERGE B commits meanwhile, then A tries to commit.
    Delta refuses A's commit; the retry merges A again on top of B, and nothing is lost."""
    uri = str(tmp_path / ORDER_TRACKING.name)
    ORDER_TRACKING.ensure(spark, uri)
    first = staged_rows(spark, 1, "Shipped")
    sequenced_merge(spark, uri, first, "day1", summarize_source(first))
    gate = tmp_path / "gate"
    # Separate sessions, as separate runs would have (the commit tag is a session setting).
    session_a, session_b = new_session(), new_session()

    def merge_a():
        rows = staged_rows(session_a, 3, "Delivered")
        source = summarize_source(rows)
        return sequenced_merge(session_a, uri, held_until(rows, gate), "run-a", source)

    with ThreadPoolExecutor(1) as pool:
        a = pool.submit(merge_a)
        rows_b = staged_rows(session_b, 2, "In Transit")
        b = sequenced_merge(session_b, uri, rows_b, "run-b", summarize_source(rows_b))
        gate.touch()
        a = a.result()

    assert b.updated == 1 and a.updated == 1
    assert a.version > b.version
    assert any("conflict" in r.getMessage() for r in caplog.records), "the race did not happen"
    [row] = spark.read.format("delta").load(uri).collect()
    assert (row.status, str(row.last_update_timestamp)) == ("Delivered", "2023-01-03 12:00:00")


def test_a_range_staged_days_at_once_gives_what_staging_day_by_day_gives(spark, tmp_path):
    """stage_days stages a range's days side by side (and creates the tables first): each day's
    events, staged rows, quarantined lines and report are those of staging it alone."""
    days = ["2023-01-01", "2023-01-02", "2023-01-03", "2023-01-06"]
    rows, reports = {}, {}
    for way in ("alone", "at_once"):
        landing, lakehouse = LandingZone(uri=str(tmp_path / way / "landing")), Lakehouse(uri=str(tmp_path / way / "lakehouse"))
        land_sample_files(tmp_path / way / "landing")
        land(tmp_path / way / "landing", "orders_2023_01_06.csv", f"{HEADER}\n1,TRK1,2023-01-06,x,Delivered,a,2023-01-06 10:00:00\n")
        land_days(spark, landing, lakehouse, days, landing.list_files(), "run")
        if way == "alone":
            reports[way] = {day: stage_day(spark, lakehouse, day, "run") for day in days}
        else:
            reports[way] = stage_days(spark, lakehouse, days, "run")
        rows[way] = {
            table.name: sorted(
                tuple(r) for r in spark.read.format("delta").load(lakehouse.table_uri(table)).drop(schema.RUN_ID, schema.LANDED_AT).collect()
            )
            for table in (ORDER_EVENTS, STAGED_ORDERS, QUARANTINED_ORDERS)
        }  # fmt: skip
    assert reports["at_once"] == reports["alone"]
    assert rows["at_once"] == rows["alone"]
    assert [r.rows_quarantined for r in reports["at_once"].values()] == [0, 0, 0, 1]
    assert len(rows["at_once"][STAGED_ORDERS.name]) == 20 + 21 + 6


def test_a_merge_given_its_own_staging_ignores_keys_a_later_restage_added(spark, tmp_path):
    """A run's MERGE takes the staged day's key range from its own staging instead of reading the
    day back. If another run restages the day in between (two runs of one day without the pool)
    and adds a key outside that range which the table already holds, the MERGE must leave that
    key to the other run: merged here it would be inserted a second time, since the MERGE only
    matches target rows within the range."""
    landing, lakehouse = LandingZone(uri=str(tmp_path / "landing")), Lakehouse(uri=str(tmp_path / "lakehouse"))
    files = []

    def land_and_ingest(day: str, name: str, lines: list[str], landed_at) -> None:
        land(tmp_path / "landing", name, "\n".join([HEADER, *lines]) + "\n", landed_at)
        files.append((name, "\n".join([HEADER, *lines]), landed_at))
        land_day(spark, landing, lakehouse, day, landing.list_files(), "run")

    land_and_ingest("2023-01-04", "orders_2023_01_04.csv", [
        "1005,TRK5,2023-01-03,2023-01-09,In Transit,5 Main St,2023-01-04 10:00:00",
    ], at(4))
    first = stage_day(spark, lakehouse, "2023-01-04", "run-4")
    merge_day(spark, lakehouse, "2023-01-04", "run-4", first.staged)

    land_and_ingest("2023-01-05", "orders_2023_01_05.csv", [
        "1001,TRK1,2023-01-04,2023-01-09,In Transit,1 Main St,2023-01-05 09:00:00",
        "1002,TRK2,2023-01-04,2023-01-09,In Transit,2 Main St,2023-01-05 09:30:00",
    ], at(5))
    run_a = stage_day(spark, lakehouse, "2023-01-05", "run-a")
    assert run_a.staged.keys == ("TRK1", "TRK2")
    # Run b lands a late file of the same day (a newer TRK5) and restages the day first.
    land_and_ingest("2023-01-05", "orders_2023_01_05_late.csv", [
        "1005,TRK5,2023-01-03,2023-01-09,Delivered,5 Main St,2023-01-05 18:00:00",
    ], at(5, 20))
    run_b = stage_day(spark, lakehouse, "2023-01-05", "run-b")

    merge_day(spark, lakehouse, "2023-01-05", "run-a", run_a.staged)
    table = spark.read.format("delta").load(lakehouse.table_uri(ORDER_TRACKING))
    assert table.where(F.col(schema.TRACKING_NUM) == "TRK5").count() == 1
    merge_day(spark, lakehouse, "2023-01-05", "run-b", run_b.staged)
    assert business_rows(table) == oracle(files)
