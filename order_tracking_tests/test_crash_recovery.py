"""Runs killed halfway (SIGKILL, no cleanup) and restarted: nothing lost, nothing counted twice.

Day 1 is materialized normally. Day 2 is then run through the `dagster` CLI three times, killed
each time at a later crash point (order_tracking/faults.py), and finally run to the end in this
process. Between crashes the test checks what a dead run may leave behind; at the end, the table
must equal the plain-Python oracle and the ledger must hold each file exactly once.

The runs are clients of the suite's engine. Killing a client does not stop what it already asked
the engine to do: a MERGE under way when its run is killed is completed and committed by the
engine (a run cancelled with SIGTERM or Ctrl-C interrupts it instead; test_engine.py). The rerun
then finds the day merged and changes nothing.
"""

import os
import subprocess
import time
from pathlib import Path

from pyspark.sql import functions as F

from order_tracking.raw_zone import read_ledger
from order_tracking.catalog import ORDER_TRACKING, RAW_FILE_LEDGER, STAGED_ORDERS
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.sample_data import sample_files
from order_tracking.delta import history, latest_version
from order_tracking_devtools.databricks_standin.operator import materialize_command
from order_tracking_tests.helpers import at, business_rows, land, oracle, run_days

def run_killed_at(point: str, day: str, landing: Path, lakehouse: Path, work: Path) -> None:
    (work / "home").mkdir(parents=True, exist_ok=True)
    env = os.environ | {
        "DAGSTER_HOME": str(work / "home"),
        "ORDER_TRACKING_LANDING_URI": str(landing),
        "ORDER_TRACKING_LAKEHOUSE_URI": str(lakehouse),
        "ORDER_TRACKING_DATA_DIR": str(work / "data"),
        "ORDER_TRACKING_CRASH_AT": point,
    }
    completed = subprocess.run(
        materialize_command(day),
        env=env, cwd=work, capture_output=True, text=True, timeout=600,
        start_new_session=True,
    )  # fmt: skip
    assert completed.returncode == -9, f"{point}: not killed\n{completed.stderr[-3000:]}"


def merges_of_day(spark, uri: str, day: str) -> list:
    """The MERGE commits tagged for `day` (the tag is "<run id> <day>")."""
    tagged = history(spark, uri).where(
        (F.col("operation") == "MERGE") & F.col("userMetadata").endswith(f" {day}")
    )
    return tagged.select("version", "userMetadata").collect()


def wait_for_merges_of_day(spark, uri: str, day: str, timeout: float = 180) -> list:
    deadline = time.monotonic() + timeout
    while not (merges := merges_of_day(spark, uri, day)) and time.monotonic() < deadline:
        time.sleep(1)
    return merges


def test_a_day_killed_at_each_step_recovers_exactly(
    spark, local_resources, landing_dir, lakehouse_dir, tmp_path
):
    day1, day2 = sample_files()[:2]
    land(landing_dir, day1.name, day1.read_bytes(), at(1))
    run_days(local_resources, ["2023-01-01"])
    land(landing_dir, day2.name, day2.read_bytes(), at(2))
    lakehouse = Lakehouse(uri=str(lakehouse_dir))
    target, ledger = lakehouse.table_uri(ORDER_TRACKING), lakehouse.table_uri(RAW_FILE_LEDGER)
    version_after_day1 = latest_version(spark, target)

    # Copied into the raw zone, not yet recorded, not yet removed from landing.
    run_killed_at("after_raw_copy", "2023-01-02", landing_dir, lakehouse_dir, tmp_path)
    assert [p.name for p in landing_dir.iterdir()] == [day2.name]
    assert (lakehouse_dir / "raw" / "dt=2023-01-02" / day2.name).read_bytes() == day2.read_bytes()
    assert read_ledger(spark, ledger, "2023-01-02") == []

    # The rerun adopts the orphaned copy (same bytes, same path: no v2), records and removes it,
    # stages the day, and dies before the MERGE.
    run_killed_at("before_merge", "2023-01-02", landing_dir, lakehouse_dir, tmp_path)
    assert list(landing_dir.iterdir()) == []
    [entry] = read_ledger(spark, ledger, "2023-01-02")
    assert (entry.file_name, entry.version) == (day2.name, 1)
    assert latest_version(spark, target) == version_after_day1

    # Killed while the engine runs its MERGE: the engine completes it, once, without the run.
    run_killed_at("during_merge", "2023-01-02", landing_dir, lakehouse_dir, tmp_path)
    [orphan] = wait_for_merges_of_day(spark, target, "2023-01-02")
    assert orphan.version == version_after_day1 + 1

    # The rerun merges the day again: every row is already there, so nothing is committed.
    run_days(local_resources, ["2023-01-02"])
    assert merges_of_day(spark, target, "2023-01-02") == [orphan]
    table = spark.read.format("delta").load(target)
    expected = oracle([(day1.name, day1.read_text(), at(1)), (day2.name, day2.read_text(), at(2))])
    assert business_rows(table) == expected
    assert [(e.file_name, e.version) for e in read_ledger(spark, ledger, "2023-01-02")] == [
        (day2.name, 1)
    ]
    staged = spark.read.format("delta").load(lakehouse.table_uri(STAGED_ORDERS))
    day2_rows = staged.where("_partition_date = '2023-01-02'")
    assert day2_rows.count() == day2_rows.select("_source_file", "_source_line").distinct().count()
