"""Rebuilding from the raw zone on real tables: one tagged commit per table, the tables as the
catalog defines them (clustering kept), the raw zone and ledger untouched, and a rerun that
changes nothing, and a rebuild killed halfway that leaves the old table whole. (That a rebuild
equals the incremental path over random histories is part of test_property.py.)"""

import os
import subprocess
import sys
import time

import pytest

from order_tracking.catalog import ORDER_EVENTS, ORDER_STATUS_HISTORY, ORDER_TRACKING, RAW_FILE_LEDGER
from order_tracking.delta import history, latest_version
from order_tracking.rebuild import days_between, rebuild
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.landing import LandingZone
from order_tracking.sample_data import sample_files
from order_tracking.schema import RUN_ID
from order_tracking.transforms.history import status_versions
from order_tracking_tests.helpers import at, business_rows, land, materialize_day, sample_days_oracle

pytestmark = pytest.mark.quick

DAYS = ["2023-01-01", "2023-01-02"]


@pytest.fixture(scope="module")
def two_sample_days(spark, tmp_path_factory):
    work = tmp_path_factory.mktemp("rebuild")
    landing, lakehouse = LandingZone(uri=str(work / "landing")), Lakehouse(uri=str(work / "lakehouse"))
    for day, path in enumerate(sample_files()[: len(DAYS)], start=1):
        land(work / "landing", path.name, path.read_bytes(), at(day))
        materialize_day(spark, landing, lakehouse, DAYS[day - 1])
    ORDER_STATUS_HISTORY.ensure(spark, lakehouse.table_uri(ORDER_STATUS_HISTORY))  # (empty yet)
    return spark, lakehouse, work


def test_a_rebuild_commits_once_per_table_and_keeps_the_raw_zone(two_sample_days):
    spark, lakehouse, work = two_sample_days
    ledger_version = latest_version(spark, lakehouse.table_uri(RAW_FILE_LEDGER))
    raw = {p: p.read_bytes() for p in (work / "lakehouse" / "raw").rglob("*.csv")}
    before = {t.name: latest_version(spark, lakehouse.table_uri(t)) for t in (ORDER_TRACKING, ORDER_STATUS_HISTORY)}

    report = rebuild(spark, lakehouse, DAYS[0], DAYS[-1], "r1")

    assert report.days_restaged == DAYS and report.rows_after == 21
    for table in (ORDER_TRACKING, ORDER_STATUS_HISTORY):
        uri = lakehouse.table_uri(table)
        commits = spark.sql(f"DESCRIBE HISTORY delta.`{uri}`").where(f"version > {before[table.name]}").collect()
        # One MERGE at most (none when no row changed), tagged with the rebuild.
        assert {(c.operation, c.userMetadata) for c in commits} <= {("MERGE", f"rebuild r1 {DAYS[0]}...{DAYS[-1]}")}
        assert len(commits) <= 1
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{lakehouse.table_uri(ORDER_TRACKING)}`").first()
    assert detail.clusteringColumns == ["tracking_num"]  # the table's layout kept
    assert business_rows(spark.read.format("delta").load(lakehouse.table_uri(ORDER_TRACKING))) == sample_days_oracle(2)
    assert latest_version(spark, lakehouse.table_uri(RAW_FILE_LEDGER)) == ledger_version
    assert {p: p.read_bytes() for p in (work / "lakehouse" / "raw").rglob("*.csv")} == raw


def test_a_rebuild_run_again_gives_the_same_tables(two_sample_days):
    spark, lakehouse, _ = two_sample_days

    def content():
        return [
            sorted(map(str, spark.read.format("delta").load(lakehouse.table_uri(t)).drop("_run_id").collect()))
            for t in (ORDER_TRACKING, ORDER_STATUS_HISTORY)
        ]

    rebuild(spark, lakehouse, DAYS[0], DAYS[-1], "r2")
    first = content()
    rebuild(spark, lakehouse, DAYS[0], DAYS[0], "r3")  # a part of the range: the other day stays in
    assert content() == first


def test_a_range_that_ends_before_it_starts_is_refused():
    with pytest.raises(ValueError, match="ends before it starts"):
        days_between("2023-01-02", "2023-01-01")


def run_rebuild_killed_at(point: str, lakehouse: Lakehouse, work) -> None:
    """The rebuild command, killed with SIGKILL at `point` (order_tracking/faults.py)."""
    env = os.environ | {"ORDER_TRACKING_LAKEHOUSE_URI": lakehouse.uri, "ORDER_TRACKING_CRASH_AT": point}
    command = [sys.executable, "-m", "order_tracking.rebuild", DAYS[0], DAYS[-1]]
    completed = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True, timeout=600)
    assert completed.returncode == -9, f"{point}: not killed\n{completed.stderr[-3000:]}"


# Last in the module: it damages the fixture's table (and rebuilds it).
def test_a_rebuild_killed_halfway_leaves_the_old_table_whole_and_a_rerun_finishes_it(two_sample_days):
    spark, lakehouse, work = two_sample_days
    target, history_uri = lakehouse.table_uri(ORDER_TRACKING), lakehouse.table_uri(ORDER_STATUS_HISTORY)
    table = lambda: business_rows(spark.read.format("delta").load(target))  # noqa: E731
    # What a rebuild is for: a table that no longer says what the raw files say.
    spark.sql(f"DELETE FROM delta.`{target}` WHERE tracking_num IN ('TRK1001', 'TRK1002')")
    spark.sql(f"UPDATE delta.`{target}` SET status = 'Lost' WHERE tracking_num = 'TRK1003'")
    damaged, damaged_version = table(), latest_version(spark, target)
    history_version = latest_version(spark, history_uri)
    assert damaged != sample_days_oracle(2)

    # Killed once the range is staged again: no table replaced yet.
    run_rebuild_killed_at("rebuild_after_restage", lakehouse, work)
    assert (table(), latest_version(spark, target)) == (damaged, damaged_version)
    assert latest_version(spark, history_uri) == history_version

    # Killed while order_tracking's MERGE reads its source. The engine completes what its dead
    # client asked for: until its one commit, every read sees the old table whole, then the new.
    run_rebuild_killed_at("rebuild_during_replace", lakehouse, work)
    rebuilt = sample_days_oracle(2)
    deadline = time.monotonic() + 180
    while latest_version(spark, target) == damaged_version and time.monotonic() < deadline:
        # The commit can land between the version check and the read (seen with three test
        # workers): then the read may see the new table whole; never a mix, never early.
        rows = table()
        assert rows == damaged or (rows == rebuilt and latest_version(spark, target) > damaged_version)
        time.sleep(0.5)
    [commit] = history(spark, target).where(f"version > {damaged_version}").collect()
    assert (commit.operation, commit.userMetadata.split(" ")[0]) == ("MERGE", "rebuild")
    assert table() == rebuilt
    assert latest_version(spark, history_uri) == history_version  # the client died before it

    # Run again to the end: the table needs nothing more; the history is the events' versions.
    rebuild(spark, lakehouse, DAYS[0], DAYS[-1], "after-the-kill")
    assert latest_version(spark, target) == commit.version
    assert table() == sample_days_oracle(2)
    rewritten = spark.read.format("delta").load(history_uri).drop(RUN_ID)
    events = spark.read.format("delta").load(lakehouse.table_uri(ORDER_EVENTS))
    expected = status_versions(events, "any").select(*rewritten.columns)
    assert rewritten.count() > 0
    assert sorted(map(str, rewritten.collect())) == sorted(map(str, expected.collect()))
