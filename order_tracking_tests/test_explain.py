"""Explaining an order: what became of each line is judged right (pure, case by case), and on real
tables after a hostile history the explanation finds every line, the quarantined one, the tie
lost, the duplicate, the stale late line, and the MERGE that wrote the row. (The five sample days,
launched from the UI through GraphQL: test_ui.py.)"""

from dataclasses import replace
from datetime import date, datetime

import pytest

from order_tracking.catalog import ORDER_TRACKING
from order_tracking.explain import Line, Merge, explain, judge_lines
from order_tracking.insights import rebuild_history
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.landing import LandingZone
from order_tracking_tests.helpers import HEADER, at, land, materialize_day

pytestmark = pytest.mark.quick

DAY_1, DAY_2 = date(2023, 1, 1), date(2023, 1, 2)


def line(day, path, number, hour, status="In Transit", landed=1, run="r1", text=None, reason=None) -> Line:
    return Line(
        day=day,
        file_name=path.rsplit("/", 1)[-1],
        version=1,
        raw_path=path,
        line=number,
        landed_at=datetime(2023, 1, landed, 12),
        raw_text=text or f"{number},TRK1,{status},{hour}",
        status=status,
        last_update=datetime(2023, 1, 1, hour),
        reason=reason,
        recorded_by=run,
        recorded_at=datetime(2026, 1, 1, landed),
    )


def merge(version, run, day) -> Merge:
    return Merge(version, datetime(2026, 1, 1, version), run, day.isoformat())


A, B, C = "raw/dt=2023-01-01/a.csv", "raw/dt=2023-01-01/b.csv", "raw/dt=2023-01-02/c.csv"


def outcomes(lines, kept, current, merges) -> dict[tuple[str, int], str]:
    return {(x.raw_path, x.line): x.outcome for x in judge_lines(lines, kept, current, merges)}


def test_each_line_is_told_what_became_of_it():
    lines = [
        line(DAY_1, A, 2, 9),  # older than b.csv's, merged in the same MERGE
        line(DAY_1, A, 3, 8),
        line(DAY_1, A, 4, 9, reason="last_update_timestamp is not a timestamp"),
        line(DAY_1, A, 5, 10, "Delivered"),  # a tie lost to b.csv, landed later
        line(DAY_1, B, 2, 10, "Returned", landed=2),  # the same line again, as line 3
        line(DAY_1, B, 3, 10, "Returned", landed=2),  # the current row
        line(DAY_2, C, 2, 7, "Shipped", landed=3, run="r2"),  # a late line, older: stale
        line(DAY_2, C, 3, 11, "Delivered", landed=3, run="r3"),  # its run has not merged
    ]
    lines[4] = replace(lines[4], raw_text=lines[5].raw_text)
    kept = {(A, 2), (A, 3), (B, 3), (C, 2), (C, 3)}  # one per timestamp and day
    merges = [merge(1, "r1", DAY_1), merge(2, "r2", DAY_2)]
    got = outcomes(lines, kept, (B, 3), merges)
    newest = "b.csv line 3 (Returned, 2023-01-01 10:00:00)"
    assert got == {
        (A, 2): f"lost to a newer line: {newest}",
        (A, 3): f"lost to a newer line: {newest}",
        (A, 4): "quarantined: last_update_timestamp is not a timestamp",
        (A, 5): "lost a tie to b.csv line 3 (Returned): same timestamp, its file landed later",
        (B, 2): "duplicate of b.csv line 3",
        (B, 3): "won: the current row",
        (C, 2): f"stale on arrival: lost to a newer line: {newest}",
        (C, 3): "staged, not merged yet",
    }


def test_a_line_that_won_and_was_replaced_later_names_the_line_and_the_version():
    lines = [line(DAY_1, A, 2, 9), line(DAY_2, C, 2, 11, "Delivered", landed=3, run="r2")]
    merges = [merge(1, "r1", DAY_1), merge(2, "r2", DAY_2)]
    got = outcomes(lines, {(A, 2), (C, 2)}, (C, 2), merges)
    assert got[(A, 2)] == "won at version 1, then lost to a newer line: c.csv line 2 (Delivered, 2023-01-01 11:00:00)"
    assert got[(C, 2)] == "won: the current row"


def test_a_restaged_day_keeps_the_merge_that_first_took_its_lines_in():
    # Day 1 merged by r1 (version 1), day 2's older late line by r2 (version 2), then day 1 run
    # again by r3 (version 3): the late line was stale when it came, whatever r3 redid.
    lines = [line(DAY_1, A, 2, 9), line(DAY_2, C, 2, 7, landed=3, run="r2")]
    merges = [merge(1, "r1", DAY_1), merge(2, "r2", DAY_2), merge(3, "r3", DAY_1)]
    got = outcomes(lines, {(A, 2), (C, 2)}, (A, 2), merges)
    assert got[(C, 2)].startswith("stale on arrival: lost to a newer line: a.csv line 2")


ORDER = "{n},TRK{n},2023-01-01,,{status},\"1, Main St\",2023-01-0{day} {hour}:00:00"


def order_line(n, status, hour, day=1) -> str:
    return ORDER.format(n=n, status=status, hour=f"{hour:02d}", day=day)


@pytest.fixture(scope="module")
def hostile(spark, tmp_path_factory):
    """Day 1: a.csv (TRK1 twice, a bad line naming TRK1, TRK2), then late_a.csv landed later (TRK2
    at the same time: a tie, written twice); day 1 merged. Day 2's file carries an older late line
    of TRK1; day 2 merged. Then a.csv replayed byte for byte and day 1 run again."""
    work = tmp_path_factory.mktemp("explain")
    landing, lakehouse = LandingZone(uri=str(work / "landing")), Lakehouse(uri=str(work / "lakehouse"))
    a = "\n".join(
        [
            HEADER,
            order_line(1, "In Transit", 9),
            "1,TRK1,2023-01-01,,Shipped,x,yesterday",
            order_line(1, "Shipped", 8),
            order_line(2, "Delivered", 10),
        ]
    )
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
    return spark, lakehouse


def by_line(explanation) -> dict[tuple[str, int], str]:
    return {(x.file_name, x.line): x.outcome for x in explanation.lines}


def test_every_line_of_an_order_is_found_with_its_fate(hostile):
    spark, lakehouse = hostile
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
    spark, lakehouse = hostile
    assert by_line(explain(spark, lakehouse, "TRK2")) == {
        ("order_tracking_2023_01_01.csv", 5): "lost a tie to late_20230101.csv line 3 (Returned): same timestamp, its file landed later",
        ("late_20230101.csv", 2): "duplicate of late_20230101.csv line 3",
        ("late_20230101.csv", 3): "won: the current row",
    }


def test_the_merge_that_wrote_the_row_and_the_history_are_shown(hostile):
    spark, lakehouse = hostile
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
    spark, lakehouse = hostile
    explanation = explain(spark, lakehouse, "TRK9")
    assert explanation.lines == [] and explanation.current is None
    assert explanation.closest == ["TRK1", "TRK2", "TRK3"]
    assert "TRK9 was never received" in explanation.to_markdown()
