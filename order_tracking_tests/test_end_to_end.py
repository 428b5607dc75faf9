"""The user's five sample days through the whole pipeline, in day order: the exact final table."""

import os
import re
import subprocess
import sys

from order_tracking.sample_data import land_sample_files
from order_tracking_tests.helpers import (
    SAMPLE_DAYS,
    business_rows,
    expected_rows,
    materializations,
    run_days,
    sample_days_oracle,
)

DAYS = SAMPLE_DAYS


def test_expected_table_matches_an_independent_oracle():
    assert sample_days_oracle(len(DAYS)) == expected_rows()


def test_sample_days_give_the_expected_table(spark, local_resources, landing_dir, lakehouse_dir):
    land_sample_files(landing_dir)

    results = run_days(local_resources, DAYS)

    table = spark.read.format("delta").load(str(lakehouse_dir / "order_tracking"))
    assert business_rows(table) == expected_rows()
    [trk1017] = table.where("tracking_num = 'TRK1017'").collect()
    assert (trk1017.status, str(trk1017.last_update_timestamp)) == ("Returned", "2023-01-05 23:17:40")
    # TRK1019 has the same newest row in the 01-04 and 01-05 files: the later-landed file wins.
    [trk1019] = table.where("tracking_num = 'TRK1019'").collect()
    assert trk1019._source_file == "raw/dt=2023-01-05/order_tracking_2023_01_05.csv"

    merges = []
    for result in results:
        [m] = materializations(result, "order_tracking")
        merges.append(tuple(m.metadata[k].value for k in ("inserted", "updated", "skipped_as_stale")))
    assert merges == [(20, 0, 0), (1, 20, 0), (0, 6, 0), (1, 21, 0), (1, 22, 0)]
    assert list(landing_dir.iterdir()) == []


def test_the_demo_prints_what_each_day_did_and_the_table(tmp_path):
    """`make demo` (python -m order_tracking.demo) on a data directory of its own, attached to the
    suite's engine: while it runs, a line per day and asset; then a line per day with what each
    asset did, and the final table; none of Spark's, Ivy's or Dagster's own noise."""
    (tmp_path / "home").mkdir()
    env = os.environ | {"DAGSTER_HOME": str(tmp_path / "home"), "ORDER_TRACKING_DATA_DIR": str(tmp_path / "data")}
    demo = subprocess.run(
        [sys.executable, "-m", "order_tracking.demo"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )  # fmt: skip
    assert demo.returncode == 0, demo.stderr[-3000:]

    rows = [line.split() for line in demo.stdout.splitlines() if re.match(r"(day|2023-01-0\d) ", line)]
    (header, *days), (figures_header, *figures) = rows[:6], rows[6:]
    assert header == ["day", "files", "staged", "quarantined", "inserted", "updated", "stale", "rows"]
    assert [day[0] for day in days] == DAYS
    assert [(files, quarantined) for _, files, _, quarantined, *_ in days] == [("1", "0")] * 5
    assert [tuple(day[4:]) for day in days] == [
        ("20", "0", "0", "20"), ("1", "20", "0", "21"), ("0", "6", "0", "21"), ("1", "21", "0", "22"), ("1", "22", "0", "23"),
    ]
    # The days' figures (order_kpis_daily), as tests/test_insights.py works them out by hand.
    assert figures_header == ["day", "known", "changes", "delivered", "on_time", "transit_p50", "open", "open_>3d", "late_lines"]
    assert [tuple(day[1:]) for day in figures] == [
        ("20", "20", "5", "1.0", "0", "12", "0", "0"), ("21", "18", "5", "1.0", "1", "13", "0", "0"),
        ("22", "9", "2", "1.0", "0", "10", "0", "0"), ("23", "21", "7", "1.0", "3", "10", "0", "3"),
        ("23", "17", "1", "1.0", "4", "9", "8", "6"),
    ]
    assert f"order_tracking (23 rows) in {tmp_path / 'data' / 'lakehouse' / 'order_tracking'}" in demo.stdout
    assert "TRK1017" in demo.stdout
    staged, inserted, updated = (20, 21, 6, 22, 23), (20, 1, 0, 1, 1), (0, 20, 6, 21, 22)
    known, delivered, open_ = (20, 21, 22, 23, 23), (5, 5, 2, 7, 1), (12, 13, 10, 10, 9)
    logged = [line.split(" - ")[-1] for line in demo.stderr.splitlines() if " - INFO - " in line]
    assert "Spark: the Spark Connect server at localhost:" in logged[0]  # the suite's engine, never its token
    progress = [line for line in logged if re.match(r"2023-01-0\d \w+: ", line)]
    assert progress == (
        [f"{day} raw_order_files: 1 file(s) moved" for day in DAYS]
        + [f"{day} staged_orders: {n} row(s) staged, 0 quarantined" for day, n in zip(DAYS, staged)]
        + [f"{day} order_tracking: {i} inserted, {u} updated, 0 stale" for day, i, u in zip(DAYS, inserted, updated)]
        + [f"{day} order_kpis_daily: {k} known, {d} delivered, {o} open" for day, k, d, o in zip(DAYS, known, delivered, open_)]
    )
    for noise in ("BetaWarning", "WindowExec", ":: resolving dependencies", "Using Spark's default log4j"):
        assert noise not in demo.stdout + demo.stderr
