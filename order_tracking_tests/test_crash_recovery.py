"""Runs killed halfway (SIGKILL, no cleanup) and restarted: nothing lost, nothing counted twice.

Day 1 is materialized normally. Day 2 is then run through the `dagster` CLI three times, killed
each time at a later crash point (order_tracking/faults.py), and finally run to the end in this
process. Between crashes the test checks what a dead run may leave behind; at the end, the table
must equal the plain-Python oracle and the ledger must hold each file exactly once. One sequence
rather than one test per point: each killed run is a fresh process with a cold Spark JVM.
"""

import os
import subprocess
from pathlib import Path

from delta.tables import DeltaTable

from order_tracking.raw_zone import read_ledger
from order_tracking.resources.lakehouse import (
    ORDER_TRACKING,
    RAW_FILE_LEDGER,
    STAGED_ORDERS,
    Lakehouse,
)
from order_tracking.sample_data import sample_files
from order_tracking_tests.databricks_standin.operator import materialize_command
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


def version(spark, uri: str) -> int:
    return DeltaTable.forPath(spark, uri).history(1).collect()[0]["version"]


def test_a_day_killed_at_each_step_recovers_exactly(
    spark, local_resources, landing_dir, lakehouse_dir, tmp_path
):
    day1, day2 = sample_files()[:2]
    land(landing_dir, day1.name, day1.read_bytes(), at(1))
    run_days(local_resources, ["2023-01-01"])
    land(landing_dir, day2.name, day2.read_bytes(), at(2))
    lakehouse = Lakehouse(uri=str(lakehouse_dir))
    target, ledger = lakehouse.table_uri(ORDER_TRACKING), lakehouse.table_uri(RAW_FILE_LEDGER)
    version_after_day1 = version(spark, target)

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
    assert version(spark, target) == version_after_day1

    # Killed while the MERGE reads its source: nothing may be committed.
    run_killed_at("during_merge", "2023-01-02", landing_dir, lakehouse_dir, tmp_path)
    assert version(spark, target) == version_after_day1

    run_days(local_resources, ["2023-01-02"])
    table = spark.read.format("delta").load(target)
    expected = oracle([(day1.name, day1.read_text(), at(1)), (day2.name, day2.read_text(), at(2))])
    assert business_rows(table) == expected
    assert [(e.file_name, e.version) for e in read_ledger(spark, ledger, "2023-01-02")] == [
        (day2.name, 1)
    ]
    staged = spark.read.format("delta").load(lakehouse.table_uri(STAGED_ORDERS))
    day2_rows = staged.where("_partition_date = '2023-01-02'")
    assert day2_rows.count() == day2_rows.select("_source_file", "_source_line").distinct().count()
