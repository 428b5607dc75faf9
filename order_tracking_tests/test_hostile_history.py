"""The three operator tools on one hostile history, on real tables: a file that repeats a key
(older line after a newer one), a quarantined line naming the key, a tie between two files of a
day (and a line repeated in the later one), a late line carried by the next day's file, and a
file replayed byte for byte. Explain must tell each line's fate; a rebuild must give back the
same tables; an undo must give back the table before the undone run, and the day run again after
it the full table again. (The five sample days for the three: test_ui.py; the rules of each
tool, case by case: test_explain.py, test_undo.py, test_rebuild.py.)

The tests share the history (a module fixture, about 40 s to build) and run in file order: the
rebuild, then the undo (which changes the tables), come last."""

from dataclasses import dataclass

import pytest

from order_tracking.catalog import ORDER_STATUS_HISTORY, ORDER_TRACKING, QUARANTINED_ORDERS
from order_tracking.explain import explain
from order_tracking.insights import rebuild_history
from order_tracking.rebuild import rebuild
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.landing import LandingZone
from order_tracking.schema import RUN_ID
from order_tracking.undo import UndoRefused, read_commits, undo_run
from order_tracking_tests.helpers import HEADER, at, business_rows, land, materialize_day, oracle

pytestmark = pytest.mark.quick


@dataclass
class Hostile:
    spark: object
    lakehouse: Lakehouse
    landing: LandingZone
    files: dict[str, str]  # the files' texts, by role

ORDER = "{n},TRK{n},2023-01-01,,{status},\"1, Main St\",2023-01-0{day} {hour}:00:00"


BAD_LINE = "1,TRK1,2023-01-01,,Shipped,x,yesterday"


def order_line(n, status, hour, day=1) -> str:
    return ORDER.format(n=n, status=status, hour=f"{hour:02d}", day=day)


@pytest.fixture(scope="module")
def hostile(spark, tmp_path_factory):
    """Day 1: a.csv (TRK1 twice, a bad line naming TRK1, TRK2), then late_a.csv landed later (TRK2
    at the same time: a tie, written twice); day 1 merged. Day 2's file carries an older late line
    of TRK1; day 2 merged. Then a.csv replayed byte for byte and day 1 run again."""
    work = tmp_path_factory.mktemp("hostile")
    landing, lakehouse = LandingZone(uri=str(work / "landing")), Lakehouse(uri=str(work / "lakehouse"))
    a = "\n".join([HEADER, order_line(1, "In Transit", 9), BAD_LINE, order_line(1, "Shipped", 8), order_line(2, "Delivered", 10)])
    land(work / "landing", "order_tracking_2023_01_01.csv", a, at(2, 6))
    late = "\n".join([HEADER, order_line(2, "Returned", 10), order_line(2, "Returned", 10)])
    land(work / "landing", "late_20230101.csv", late, at(2, 7))
    materialize_day(spark, landing, lakehouse, "2023-01-01")
    day_2 = "\n".join([HEADER, order_line(1, "Order Placed", 7), order_line(3, "Shipped", 9, day=2)])
    land(work / "landing", "order_tracking_2023_01_02.csv", day_2, at(3, 6))
    materialize_day(spark, landing, lakehouse, "2023-01-02")
    land(work / "landing", "order_tracking_2023_01_01.csv", a, at(3, 8))  # the replay
    materialize_day(spark, landing, lakehouse, "2023-01-01")
    # The status history of both days at once, as a range run's insight step does (cheaper than
    # one rebuild per run here; explain reads the history, whichever run built it).
    rebuild_history(spark, lakehouse, "2023-01-01", "2023-01-02", "history-run")
    return Hostile(spark, lakehouse, landing, {"a": a, "late": late, "day_2": day_2})


def by_line(explanation) -> dict[tuple[str, int], str]:
    return {(x.file_name, x.line): x.outcome for x in explanation.lines}


def test_every_line_of_an_order_is_found_with_its_fate(hostile):
    spark, lakehouse = hostile.spark, hostile.lakehouse
    explanation = explain(spark, lakehouse, "TRK1")
    newest = "order_tracking_2023_01_01.csv line 2 (In Transit, 2023-01-01 09:00:00)"
    assert by_line(explanation) == {
        ("order_tracking_2023_01_01.csv", 2): "won: the current row",
        ("order_tracking_2023_01_01.csv", 3): "quarantined: " + explanation.lines[1].reason,
        ("order_tracking_2023_01_01.csv", 4): f"lost to a newer line: {newest}",
        ("order_tracking_2023_01_02.csv", 2): f"stale on arrival: lost to a newer line: {newest}",
    }
    assert len(explanation.lines) == 4  # the replayed file was received once: its lines once
    assert explanation.lines[1].reason  # the quarantine's own reason, never empty
    assert explanation.current["status"] == "In Transit"


def test_a_tie_lost_and_a_duplicate_are_told_apart(hostile):
    spark, lakehouse = hostile.spark, hostile.lakehouse
    assert by_line(explain(spark, lakehouse, "TRK2")) == {
        ("order_tracking_2023_01_01.csv", 5): "lost a tie to late_20230101.csv line 3 (Returned): same timestamp, its file landed later",
        ("late_20230101.csv", 2): "duplicate of late_20230101.csv line 3",
        ("late_20230101.csv", 3): "won: the current row",
    }


def test_the_merge_that_wrote_the_row_and_the_history_are_shown(hostile):
    spark, lakehouse = hostile.spark, hostile.lakehouse
    explanation = explain(spark, lakehouse, "TRK1")
    run_id, day, commit = explanation.current_merge
    merges = spark.sql(f"DESCRIBE HISTORY delta.`{lakehouse.table_uri(ORDER_TRACKING)}`").where("operation = 'MERGE'")
    first = merges.orderBy("version").first()
    # Day 1's first run wrote the row; its rerun (after the replay) changed nothing.
    first_run = first.userMetadata.split(" ")[0]
    assert (day, commit.version, commit.run_id, run_id) == ("2023-01-01", first.version, first_run, first_run)
    assert [(h["status"], h["valid_to"] is None) for h in explanation.history] == [
        ("Order Placed", False),
        ("Shipped", False),
        ("In Transit", True),
    ]
    markdown = explanation.to_markdown()
    assert markdown.startswith("# TRK1\n") and f"run `{run_id}` for day 2023-01-01" in markdown
    assert "| 2023-01-02 | order_tracking_2023_01_02.csv | 2 |" in markdown


def test_an_unknown_number_is_said_never_received_with_the_closest_known(hostile):
    spark, lakehouse = hostile.spark, hostile.lakehouse
    explanation = explain(spark, lakehouse, "TRK9")
    assert explanation.lines == [] and explanation.current is None
    assert explanation.closest == ["TRK1", "TRK2", "TRK3"]
    assert "TRK9 was never received" in explanation.to_markdown()


def content(spark, lakehouse, table) -> list[str]:
    frame = spark.read.format("delta").load(lakehouse.table_uri(table)).drop(RUN_ID)
    return sorted(map(str, frame.collect()))


def day_1_files(hostile) -> list[tuple]:
    """The oracle's input for day 1: its files, the quarantined line left out (the oracle takes
    every line as well formed)."""
    return [
        ("order_tracking_2023_01_01.csv", hostile.files["a"].replace(BAD_LINE + "\n", ""), at(2, 6)),
        ("late_20230101.csv", hostile.files["late"], at(2, 7)),
    ]


def all_files(hostile) -> list[tuple]:
    return [*day_1_files(hostile), ("order_tracking_2023_01_02.csv", hostile.files["day_2"], at(3, 6))]


def test_a_rebuild_gives_back_the_same_tables(hostile):
    spark, lakehouse = hostile.spark, hostile.lakehouse
    before = {t.name: content(spark, lakehouse, t) for t in (ORDER_TRACKING, ORDER_STATUS_HISTORY)}

    report = rebuild(spark, lakehouse, "2023-01-01", "2023-01-02", "hostile-rebuild")

    assert report.days_restaged == ["2023-01-01", "2023-01-02"]
    assert {t.name: content(spark, lakehouse, t) for t in (ORDER_TRACKING, ORDER_STATUS_HISTORY)} == before
    table = spark.read.format("delta").load(lakehouse.table_uri(ORDER_TRACKING))
    assert business_rows(table) == oracle(all_files(hostile))
    # Restaged, not added: the quarantined line once, each staged line once (the replay included).
    [bad] = spark.read.format("delta").load(lakehouse.table_uri(QUARANTINED_ORDERS)).collect()
    assert "yesterday" in bad.raw_text
    assert report.rows_quarantined == 1


def test_undoing_the_day_with_the_late_line_gives_back_the_table_before_it(hostile):
    spark, lakehouse = hostile.spark, hostile.lakehouse
    uri = lakehouse.table_uri(ORDER_TRACKING)
    merges = [c.run_and_day for c in read_commits(spark, uri) if c.run_and_day]
    [day_1_run] = {run for run, day in merges if day == "2023-01-01"}  # the replay's rerun merged nothing
    [day_2_run] = {run for run, day in merges if day == "2023-01-02"}

    with pytest.raises(UndoRefused, match="would also undo") as refused:
        undo_run(spark, lakehouse, day_1_run, by="test")
    assert f"run {day_2_run} (day 2023-01-02)" in str(refused.value)

    undo_run(spark, lakehouse, day_2_run, by="test", also_later_merges=True)
    table = lambda: business_rows(spark.read.format("delta").load(uri))  # noqa: E731
    # TRK3 (new on day 2) is gone; TRK1 keeps its newest line of day 1 (day 2's late line never
    # won); TRK2 keeps the later-landed file's line of the tie.
    assert table() == oracle(day_1_files(hostile))

    # The raw files stayed: the day run again (nothing new lands) gives the full table back.
    materialize_day(spark, hostile.landing, lakehouse, "2023-01-02")
    assert table() == oracle(all_files(hostile))
