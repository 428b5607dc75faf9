"""Explaining an order: what became of each line is judged right (pure, case by case). On real
tables after a hostile history: test_hostile_history.py; the five sample days, launched from the
UI through GraphQL: test_ui.py."""

from dataclasses import replace
from datetime import date, datetime

import pytest

from order_tracking.explain import Line, Merge, judge_lines

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
