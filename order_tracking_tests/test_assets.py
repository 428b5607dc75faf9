"""staged_orders and order_tracking as Dagster assets: what they write, their metadata, their checks.

One partition or two at a time, through dagster.materialize into tmp_path.
"""

from itertools import accumulate

from dagster import materialize

from order_tracking.assets import order_tracking_compaction
from order_tracking.assets.pipeline import DAILY_ASSETS
from order_tracking.delta import history
from order_tracking.sample_data import sample_files
from order_tracking_tests.helpers import (
    GOOD_LINE,
    HEADER,
    PIPELINE,
    at,
    business_rows,
    land,
    materializations,
    materialize_selected,
    run_days,
    run_range,
    sample_days_oracle,
    stray_quotes_day,
)

STAGING = ["raw_order_files", "staged_orders"]


def metadata(result, asset):
    [materialization] = materializations(result, asset)
    return {k: v.value for k, v in materialization.metadata.items()}


def checks(result):
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def table(spark, lakehouse_dir, name):
    return spark.read.format("delta").load(str(lakehouse_dir / name))


def test_sample_day_is_staged_with_duplicates_collapsed(spark, local_resources, landing_dir, lakehouse_dir):
    day5 = sample_files()[4]
    land(landing_dir, day5.name, day5.read_bytes(), at(5))

    result = materialize_selected(STAGING, partition_key="2023-01-05", resources=local_resources)

    staged = metadata(result, "staged_orders")
    # 24 data lines; TRK1017 appears twice in the file (an old and a new row).
    assert (staged["rows_read"], staged["rows_staged"], staged["duplicates_collapsed"]) == (24, 23, 1)
    assert staged["rows_quarantined"] == 0
    assert staged["dagster/row_count"] == 23
    trk1017 = table(spark, lakehouse_dir, "staged_orders").where("tracking_num = 'TRK1017'").collect()
    assert [(r.status, str(r.last_update_timestamp), r._source_line) for r in trk1017] == [
        ("Returned", "2023-01-05 23:17:40", 25)
    ]
    assert checks(result)["partition_has_no_quarantined_rows"].passed


def test_quarantined_lines_land_in_the_quarantine_table_and_warn(spark, local_resources, landing_dir, lakehouse_dir):
    bad = GOOD_LINE.replace("1000,", "oops,", 1)
    land(landing_dir, "orders_2023_01_05.csv", f"{HEADER}\n{GOOD_LINE}\n{bad}\n")

    result = materialize_selected(STAGING, partition_key="2023-01-05", resources=local_resources)

    assert metadata(result, "staged_orders")["rows_quarantined"] == 1
    [row] = table(spark, lakehouse_dir, "quarantined_orders").collect()
    assert (row._source_file, row._source_line, row.raw_text, row.reason) == (
        "raw/dt=2023-01-05/orders_2023_01_05.csv", 3, bad, "invalid order_num: 'oops'"
    )
    assert str(row._partition_date) == "2023-01-05"
    check = checks(result)["partition_has_no_quarantined_rows"]
    assert not check.passed
    assert check.severity.value == "WARN"
    assert check.metadata["quarantined_rows"].value == 1


def test_two_stray_quotes_far_apart_cost_no_order(spark, local_resources, landing_dir, lakehouse_dir):
    """Issue #21 as the daily run sees it: every valid line reaches order_tracking."""
    text, broken = stray_quotes_day()
    land(landing_dir, "orders_2024_05_02.csv", text)

    result = materialize(PIPELINE, partition_key="2024-05-02", resources=local_resources)

    staged = metadata(result, "staged_orders")
    assert (staged["rows_read"], staged["rows_quarantined"], staged["rows_staged"]) == (52, 2, 50)
    merged = table(spark, lakehouse_dir, "order_tracking")
    assert sorted(r.tracking_num for r in merged.collect()) == sorted(f"TRK{n}" for n in range(1, 51))
    quarantine = table(spark, lakehouse_dir, "quarantined_orders").orderBy("_source_line").collect()
    assert [(r._source_line, r.raw_text) for r in quarantine] == [(12, broken[0]), (43, broken[1])]


def test_a_line_that_is_not_utf8_is_reported_as_text(spark, local_resources, landing_dir):
    """Its bytes stay in the raw zone and the quarantine table; the check's sample, which leaves
    Spark, shows it with replacement characters (a Spark Connect client cannot take raw bytes)."""
    bad = GOOD_LINE.replace("TRK1000", "TRK1001").replace("1 Main St", "Stra\xdfe 5").encode("latin-1")
    land(landing_dir, "orders_2023_01_05.csv", f"{HEADER}\n{GOOD_LINE}\n".encode() + bad + b"\n")

    result = materialize_selected(STAGING, partition_key="2023-01-05", resources=local_resources)

    check = checks(result)["partition_has_no_quarantined_rows"]
    [sample] = check.metadata["sample"].value
    assert (sample["_source_line"], sample["reason"]) == (3, "line is not valid UTF-8")
    assert "Stra\ufffde 5" in sample["raw_text"]
    assert metadata(result, "staged_orders")["rows_staged"] == 1


def test_restaging_replaces_exactly_its_partition(spark, local_resources, landing_dir, lakehouse_dir):
    land(landing_dir, "orders_2023_01_04.csv", f"{HEADER}\n{GOOD_LINE.replace('TRK1000', 'TRK4')}\n")
    land(landing_dir, "orders_2023_01_05.csv", f"{HEADER}\n{GOOD_LINE}\n")
    for day in ["2023-01-04", "2023-01-05", "2023-01-05"]:
        assert materialize_selected(STAGING, partition_key=day, resources=local_resources).success

    staged = table(spark, lakehouse_dir, "staged_orders")
    assert sorted((str(r._partition_date), r.tracking_num) for r in staged.collect()) == [
        ("2023-01-04", "TRK4"), ("2023-01-05", "TRK1000")
    ]


def test_merge_metadata_and_checks(spark, local_resources, landing_dir, lakehouse_dir):
    land(landing_dir, "orders_2023_01_04.csv", f"{HEADER}\n{GOOD_LINE}\n{GOOD_LINE.replace('TRK1000', 'TRK2')}\n", at(4))
    newer = GOOD_LINE.replace("10:00:00", "11:00:00").replace("In Transit", "Lost at sea")
    older = GOOD_LINE.replace("TRK1000", "TRK2").replace("10:00:00", "09:00:00")
    land(landing_dir, "orders_2023_01_05.csv", f"{HEADER}\n{newer}\n{older}\n{GOOD_LINE.replace('TRK1000', 'TRK3')}\n", at(5))

    _, day5 = run_days(local_resources, ["2023-01-04", "2023-01-05"])

    merged = metadata(day5, "order_tracking")
    assert (merged["inserted"], merged["updated"], merged["skipped_as_stale"]) == (1, 1, 1)
    assert merged["dagster/row_count"] == 3
    assert merged["delta_version"] == 2  # create, merge day 4, merge day 5
    results = checks(day5)
    assert results["tracking_num_is_unique"].passed
    status = results["status_is_known"]
    assert not status.passed and status.severity.value == "WARN"
    assert status.metadata["unknown_status_rows"].value == 1


def test_known_statuses_are_configurable(spark, local_resources, landing_dir):
    land(landing_dir, "orders_2023_01_05.csv", f"{HEADER}\n{GOOD_LINE.replace('In Transit', 'Lost at sea')}\n")
    result = materialize(
        PIPELINE,
        partition_key="2023-01-05",
        resources=local_resources,
        run_config={"ops": {"order_tracking_pipeline": {"config": {"known_statuses": ["Lost at sea"]}}}},
    )
    assert checks(result)["status_is_known"].passed


def test_a_day_without_files_materializes_empty(spark, local_resources, lakehouse_dir):
    """Backfills cover days on which nothing landed: those runs succeed and change nothing."""
    [result] = run_days(local_resources, ["2023-01-02"])

    assert metadata(result, "raw_order_files")["files_moved"] == 0
    assert metadata(result, "staged_orders")["rows_staged"] == 0
    assert metadata(result, "order_tracking")["dagster/row_count"] == 0
    assert all(c.passed for c in checks(result).values())


def test_one_run_over_a_range_gives_each_day_its_own_materialization(spark, local_resources, landing_dir, lakehouse_dir):
    """BackfillPolicy.single_run: a backfill of days 1-3 is one run; each day still gets its own
    counts, and the table is the oracle's."""
    for day, path in enumerate(sample_files()[:3], start=1):
        land(landing_dir, path.name, path.read_bytes(), at(day))

    result = run_range(local_resources, "2023-01-01", "2023-01-03")

    days = ["2023-01-01", "2023-01-02", "2023-01-03"]
    by_day = {
        asset: {m.partition: {k: v.value for k, v in m.metadata.items()} for m in materializations(result, asset)}
        for asset in DAILY_ASSETS
    }
    assert all(sorted(materializations) == days for materializations in by_day.values())
    assert [by_day["raw_order_files"][d]["files_moved"] for d in days] == [1, 1, 1]
    # The range's files are recorded in one ledger commit (after its creation), not one per day.
    ledger_commits = history(spark, str(lakehouse_dir / "raw_file_ledger")).collect()
    assert sorted(c.operation for c in ledger_commits) == ["CREATE TABLE", "MERGE"]
    merged = [by_day["order_tracking"][d] for d in days]
    # Each day's own MERGE: the table grows by what that day inserted.
    assert [m["dagster/row_count"] for m in merged] == list(
        accumulate(m["inserted"] for m in merged)
    )
    assert len({m["delta_version"] for m in merged}) == 3
    assert [m["source_rows"] for m in merged] == [by_day["staged_orders"][d]["rows_staged"] for d in days]
    assert business_rows(table(spark, lakehouse_dir, "order_tracking")) == sample_days_oracle(3)
    assert all(c.passed for c in checks(result).values())


def test_compaction_leaves_few_files_and_every_row_as_it_was(spark, local_resources, landing_dir, lakehouse_dir):
    for day, path in enumerate(sample_files()[:3], start=1):
        land(landing_dir, path.name, path.read_bytes(), at(day))
    run_days(local_resources, ["2023-01-01", "2023-01-02", "2023-01-03"])
    before = table(spark, lakehouse_dir, "order_tracking").localCheckpoint()

    first, again = (
        materialize([order_tracking_compaction], resources=local_resources) for _ in range(2)
    )

    compacted = metadata(first, "order_tracking_compaction")
    # Each day's MERGE added files and marked replaced rows; OPTIMIZE rewrites them as one file.
    assert compacted["files_before"] > compacted["files_after"] == 1
    assert compacted["files_removed"] == compacted["files_before"]
    assert compacted["deletion_vectors_removed"] > 0
    after = table(spark, lakehouse_dir, "order_tracking")
    assert before.exceptAll(after).count() == 0 and after.exceptAll(before).count() == 0
    assert after.count() == before.count()
    # Already compact: the second run rewrites nothing.
    repeated = metadata(again, "order_tracking_compaction")
    assert (repeated["files_removed"], repeated["files_after"]) == (0, 1)


def test_compaction_before_any_merge_creates_the_empty_table(local_resources, lakehouse_dir):
    result = materialize([order_tracking_compaction], resources=local_resources)

    assert (metadata(result, "order_tracking_compaction")["files_after"]) == 0
    assert (lakehouse_dir / "order_tracking" / "_delta_log").is_dir()
