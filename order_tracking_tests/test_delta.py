"""The Delta operations (order_tracking/delta.py): tables created as the catalog says, a day
replaced or cleared alone, the sequenced MERGE, and concurrent writers whose creation races and
conflicts are retried."""

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timezone

import pytest
from pyspark.testing import assertDataFrameEqual

from order_tracking.catalog import ORDER_TRACKING
from order_tracking.raw_zone import LedgerEntry, append_ledger, read_ledger
from order_tracking.delta import (
    history,
    is_write_conflict,
    match_condition,
    sequenced_merge,
    summarize_source,
)
from order_tracking_tests.helpers import staged_order

pytestmark = pytest.mark.quick  # the inner loop: make check


def entry(day: int) -> LedgerEntry:
    now = datetime.now(timezone.utc)
    return LedgerEntry(
        partition_date=date(2023, 1, day), file_name=f"f{day}.csv", version=1,
        raw_path=f"raw/dt=2023-01-0{day}/f{day}.csv", size_bytes=1, md5="x", landed_at=now,
        generation="1", recorded_at=now, run_id=f"run{day}",
    )


def test_concurrent_first_writes_to_a_new_table_all_land(spark, tmp_path):
    uri = str(tmp_path / "raw_file_ledger")
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda day: append_ledger(spark, uri, [entry(day)]), range(1, 5)))

    for day in range(1, 5):
        assert [e.run_id for e in read_ledger(spark, uri, f"2023-01-0{day}")] == [f"run{day}"]


def test_only_delta_conflicts_count_as_conflicts():
    assert is_write_conflict(RuntimeError("io.delta.exceptions.ProtocolChangedException: ..."))
    assert is_write_conflict(RuntimeError("[DELTA_CONCURRENT_APPEND] ConcurrentAppendException"))
    assert not is_write_conflict(RuntimeError("[PATH_NOT_FOUND] Path does not exist"))


def test_replacing_and_clearing_a_day_leave_the_other_days_alone(spark, tmp_path):
    from pyspark.sql import functions as F

    from order_tracking import schema
    from order_tracking.catalog import QUARANTINED_ORDERS
    from order_tracking.delta import clear_partition, replace_partition

    uri = QUARANTINED_ORDERS.ensure(spark, str(tmp_path / "quarantined_orders"))

    def day(key: str, lines: int):
        return spark.range(lines).select(
            F.lit(key).cast("date").alias(schema.PARTITION_DATE),
            F.lit(f"raw/{key}.csv").alias(schema.SOURCE_FILE),
            F.col("id").alias(schema.SOURCE_LINE),
            F.lit("x").alias("raw_text"),
            F.lit("bad").alias("reason"),
            F.lit("run").alias(schema.RUN_ID),
        )

    def lines_by_day() -> dict[str, int]:
        rows = spark.read.format("delta").load(uri).groupBy(schema.PARTITION_DATE).count().collect()
        return {str(r[schema.PARTITION_DATE]): r["count"] for r in rows}

    for key, lines in (("2023-01-01", 3), ("2023-01-02", 2)):
        replace_partition(day(key, lines), uri, key)
    replace_partition(day("2023-01-02", 4), uri, "2023-01-02")
    assert lines_by_day() == {"2023-01-01": 3, "2023-01-02": 4}

    clear_partition(spark, uri, "2023-01-02")
    assert lines_by_day() == {"2023-01-01": 3}
    [delete] = history(spark, uri, 1).collect()
    assert delete["operation"] == "DELETE"
    assert delete["operationMetrics"]["numAddedFiles"] == "0"  # whole files dropped, none rewritten

    clear_partition(spark, QUARANTINED_ORDERS.ensure(spark, str(tmp_path / "new_table")), "2023-01-02")
    assert spark.read.format("delta").load(str(tmp_path / "new_table")).count() == 0


def test_each_table_is_created_as_the_catalog_defines_it(spark, tmp_path):
    from order_tracking.catalog import TABLES

    for table in TABLES:
        uri = table.ensure(spark, str(tmp_path / table.name))
        detail = spark.sql(f"DESCRIBE DETAIL delta.`{uri}`").first()
        assert detail.partitionColumns == [c for c in [table.partitioned_by] if c], table.name
        assert (detail.clusteringColumns or []) == [c for c in [table.clustered_by] if c], table.name
        assert {k: detail.properties.get(k) for k in table.properties} == table.properties, table.name
        written = spark.read.format("delta").load(uri).schema
        assert [(f.name, f.dataType) for f in written] == [(f.name, f.dataType) for f in table.schema]


def test_merge_is_independent_of_order_and_repeats(spark, orders, tmp_path):
    day1 = orders(
        staged_order("TRK1", "2023-01-01 10:00:00", 1, "d1", 2, "In Transit"),
        staged_order("TRK2", "2023-01-01 11:00:00", 1, "d1", 3, "Delivered"),
    )
    day2 = orders(
        staged_order("TRK1", "2023-01-02 08:00:00", 2, "d2", 2, "Delivered"),
        staged_order("TRK2", "2023-01-01 09:00:00", 2, "d2", 3, "stale late row"),
        staged_order("TRK3", "2023-01-02 09:00:00", 2, "d2", 4, "Order Placed"),
    )
    results = []
    for name, sequence in {"forward": [day1, day2], "backward_repeated": [day2, day1, day2]}.items():
        table = ORDER_TRACKING.ensure(spark, str(tmp_path / name))
        counts = [
            sequenced_merge(spark, table, day, f"{name}-{i}", summarize_source(day))
            for i, day in enumerate(sequence)
        ]
        results.append(spark.read.format("delta").load(str(tmp_path / name)))
        if name == "forward":
            assert [(c.inserted, c.updated, c.skipped_as_stale) for c in counts] == [(2, 0, 0), (1, 1, 1)]
    for other in results[1:]:
        assertDataFrameEqual(other, results[0])
    statuses = {r.tracking_num: r.status for r in results[0].collect()}
    assert statuses == {"TRK1": "Delivered", "TRK2": "Delivered", "TRK3": "Order Placed"}


def test_order_tracking_table_is_clustered_with_deletion_vectors(spark, tmp_path):
    path = str(tmp_path / "order_tracking")
    ORDER_TRACKING.ensure(spark, path)
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()
    assert detail.clusteringColumns == ["tracking_num"]
    assert detail.properties["delta.enableDeletionVectors"] == "true"


def test_order_tracking_files_carry_statistics_on_the_key_not_on_free_text(spark, tmp_path, orders):
    """The MERGE's key-range bound skips files by their tracking_num statistics."""
    path = tmp_path / "order_tracking"
    target = ORDER_TRACKING.ensure(spark, str(path))
    day = orders(staged_order("TRK1", "2023-01-01 10:00:00", 1, "a.csv", 2))
    sequenced_merge(spark, target, day, commit_tag="t", source=summarize_source(day))

    [stats] = [
        json.loads(action["add"]["stats"])
        for log in sorted((path / "_delta_log").glob("*.json"))
        for action in map(json.loads, log.read_text().splitlines())
        if "add" in action
    ]
    assert stats["numRecords"] == 1
    assert stats["minValues"]["tracking_num"] == stats["maxValues"]["tracking_num"] == "TRK1"
    assert "last_update_timestamp" in stats["minValues"]
    assert not {"address", "status", "_source_file"} & set(stats["minValues"])


def test_the_merge_condition_bounds_the_target_to_the_source_key_range(spark):
    """So Delta can skip target files whose tracking_num statistics lie outside the day's keys."""
    staged = spark.createDataFrame([("TRK0005",), ("TRK0009",), ("TRK0002",)], "tracking_num string")
    source = summarize_source(staged)
    assert (source.rows, source.keys) == (3, ("TRK0002", "TRK0009"))
    assert match_condition(source.keys) == (
        "t.tracking_num = s.tracking_num AND t.tracking_num BETWEEN :low_key AND :high_key"
    )
    empty = summarize_source(spark.createDataFrame([], "tracking_num string"))
    assert (empty.rows, empty.keys) == (0, None)
    assert "BETWEEN" not in match_condition(None)


def test_keys_holding_quotes_and_backslashes_bound_the_merge_exactly(spark, orders, tmp_path):
    # The key range reaches the MERGE as parameters: a key that SQL would read as an escape or the
    # end of a literal must neither break the statement nor shift the range (a shifted range
    # would miss the target row and insert a duplicate).
    keys = ["TRK'1", "TRK\\2", "TRK\\'3"]
    table = ORDER_TRACKING.ensure(spark, str(tmp_path / "order_tracking"))
    for hour, status in ((10, "In Transit"), (11, "Delivered")):
        day = orders(*[staged_order(k, f"2023-01-01 {hour}:00:00", 1, "d", n, status) for n, k in enumerate(keys)])
        sequenced_merge(spark, table, day, f"h{hour}", summarize_source(day))
    rows = spark.read.format("delta").load(table).collect()
    assert sorted((r.tracking_num, r.status) for r in rows) == sorted((k, "Delivered") for k in keys)
