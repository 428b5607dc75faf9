"""Undoing a run's MERGE: the plan read from the table's history (pure), then on real tables the
table as it was before the run, the audit row, the raw zone untouched, the refusal that names the
later MERGEs, and the day run again after the undo."""

from datetime import datetime

import pytest

from order_tracking.catalog import ORDER_TRACKING, ORDER_TRACKING_UNDO_LOG, RAW_FILE_LEDGER
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.landing import LandingZone
from order_tracking.undo import Commit, UndoRefused, plan_undo, read_commits, undo_run
from order_tracking_tests.helpers import HEADER, at, business_rows, land, materialize_day

pytestmark = pytest.mark.quick


def commit(version, operation="MERGE", tag=None) -> Commit:
    return Commit(version, datetime(2026, 1, 1), operation, tag)


HISTORY = [
    commit(0, "CREATE TABLE"),
    commit(1, tag="a 2023-01-01"),
    commit(2, tag="b 2023-01-02"),
    commit(3, tag="b 2023-01-03"),  # run b: a range of two days
    commit(4, "OPTIMIZE"),
    commit(5, tag="c 2023-01-04"),
]


def test_the_plan_restores_the_version_before_the_runs_first_merge():
    plan = plan_undo(HISTORY, "b")
    assert (plan.restore_to, plan.days) == (1, ["2023-01-02", "2023-01-03"])
    assert [c.version for c in plan.later] == [5]  # c's MERGE; the compaction changes no row


def test_the_last_run_undoes_alone_and_an_unknown_or_undone_run_is_refused():
    assert plan_undo(HISTORY, "c").later == []
    with pytest.raises(UndoRefused, match="no MERGE of run x"):
        plan_undo(HISTORY, "x")
    undone = [*HISTORY, commit(6, "RESTORE", "undo c by me")]
    with pytest.raises(UndoRefused, match="run c was undone already"):
        plan_undo(undone, "c")
    # An undone run's MERGE is not one the next undo would take away.
    assert plan_undo(undone, "b").later == []


LINE = "{n},TRK{n},2023-01-01,,{status},1 Main St,2023-01-0{day} {hour}:00:00"


def day_file(day: int, *rows: tuple[int, str, int]) -> str:
    return "\n".join([HEADER, *(LINE.format(n=n, status=s, day=day, hour=f"{h:02d}") for n, s, h in rows)]) + "\n"


@pytest.fixture
def two_days(spark, tmp_path):
    """Day 1, then a bad day 2 (TRK1 set back to a wrong status, TRK9 invented); each its own run."""
    landing, lakehouse = LandingZone(uri=str(tmp_path / "landing")), Lakehouse(uri=str(tmp_path / "lakehouse"))
    land(tmp_path / "landing", "order_tracking_2023_01_01.csv", day_file(1, (1, "In Transit", 9), (2, "Shipped", 9)), at(2))
    materialize_day(spark, landing, lakehouse, "2023-01-01")
    uri = lakehouse.table_uri(ORDER_TRACKING)
    day_1 = business_rows(spark.read.format("delta").load(uri))
    land(tmp_path / "landing", "order_tracking_2023_01_02.csv", day_file(2, (1, "Lost", 9), (9, "Shipped", 9)), at(3))
    materialize_day(spark, landing, lakehouse, "2023-01-02")
    runs = [c.run_and_day for c in read_commits(spark, uri) if c.run_and_day]
    run_of = {day: run_id for run_id, day in runs}
    return spark, landing, lakehouse, day_1, run_of


def test_undoing_the_bad_days_run_gives_back_the_table_before_it_and_logs_it(two_days):
    spark, _, lakehouse, day_1, run_of = two_days
    report = undo_run(spark, lakehouse, run_of["2023-01-02"], by="test")
    uri = lakehouse.table_uri(ORDER_TRACKING)
    assert business_rows(spark.read.format("delta").load(uri)) == day_1
    assert (report.rows_before, report.rows_after) == (3, 2)
    [logged] = spark.read.format("delta").load(lakehouse.table_uri(ORDER_TRACKING_UNDO_LOG)).collect()
    assert (logged.undone_run_id, logged.days, logged.undone_by) == (run_of["2023-01-02"], "2023-01-02", "test")
    assert logged.restore_version == report.restore_version and logged.later_merges_undone == []
    [restore] = spark.sql(f"DESCRIBE HISTORY delta.`{uri}` LIMIT 1").collect()
    assert (restore.operation, restore.userMetadata) == ("RESTORE", f"undo {run_of['2023-01-02']} by test")


def test_the_raw_files_stay_so_the_day_can_run_again(two_days, tmp_path):
    spark, landing, lakehouse, _, run_of = two_days
    undo_run(spark, lakehouse, run_of["2023-01-02"], by="test")
    ledger = spark.read.format("delta").load(lakehouse.table_uri(RAW_FILE_LEDGER))
    assert sorted(r.file_name for r in ledger.collect()) == ["order_tracking_2023_01_01.csv", "order_tracking_2023_01_02.csv"]
    # The fix: a corrected day 2 file lands, and the day runs again.
    land(tmp_path / "landing", "order_tracking_2023_01_02.csv", day_file(2, (1, "Delivered", 10)), at(4))
    materialize_day(spark, landing, lakehouse, "2023-01-02")
    rows = business_rows(spark.read.format("delta").load(lakehouse.table_uri(ORDER_TRACKING)))
    assert [(r[1], r[4]) for r in rows] == [("TRK1", "Delivered"), ("TRK2", "Shipped"), ("TRK9", "Shipped")]


def test_undoing_an_earlier_run_is_refused_unless_the_later_merges_go_too(two_days):
    spark, _, lakehouse, _, run_of = two_days
    uri = lakehouse.table_uri(ORDER_TRACKING)
    before = business_rows(spark.read.format("delta").load(uri))
    with pytest.raises(UndoRefused, match=f"run {run_of['2023-01-02']} \\(day 2023-01-02\\)"):
        undo_run(spark, lakehouse, run_of["2023-01-01"], by="test")
    assert business_rows(spark.read.format("delta").load(uri)) == before  # nothing done
    report = undo_run(spark, lakehouse, run_of["2023-01-01"], by="test", also_later_merges=True)
    assert spark.read.format("delta").load(uri).count() == 0  # back to the empty table
    assert [c.run_and_day[1] for c in report.plan.later] == ["2023-01-02"]


def test_the_command_refuses_with_exit_code_2_then_undoes(two_days, engine, monkeypatch, capsys):
    from order_tracking.undo import main

    _, _, lakehouse, _, run_of = two_days
    monkeypatch.setenv("ORDER_TRACKING_SPARK_REMOTE", engine.url)
    monkeypatch.setenv("ORDER_TRACKING_LAKEHOUSE_URI", lakehouse.uri)
    assert main([run_of["2023-01-01"]]) == 2
    assert "would also undo 1 later MERGE(s)" in capsys.readouterr().err
    assert main([run_of["2023-01-02"]]) == 0
    assert f"undone_run_id: {run_of['2023-01-02']}" in capsys.readouterr().out
