"""Concurrent writers to the same Delta tables: creation races and conflicts are retried."""

from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timezone

import pytest

from order_tracking.raw_zone import LedgerEntry, append_ledger, read_ledger
from order_tracking.tables import history, is_write_conflict

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

    from order_tracking import schema as s
    from order_tracking.catalog import QUARANTINED_ORDERS
    from order_tracking.steps import clear_partition, replace_partition

    uri = str(tmp_path / "quarantined_orders")

    def day(key: str, lines: int):
        return spark.range(lines).select(
            F.lit(key).cast("date").alias(s.PARTITION_DATE),
            F.lit(f"raw/{key}.csv").alias(s.SOURCE_FILE),
            F.col("id").alias(s.SOURCE_LINE),
            F.lit("x").alias("raw_text"),
            F.lit("bad").alias("reason"),
            F.lit("run").alias(s.RUN_ID),
        )

    def lines_by_day() -> dict[str, int]:
        rows = spark.read.format("delta").load(uri).groupBy(s.PARTITION_DATE).count().collect()
        return {str(r[s.PARTITION_DATE]): r["count"] for r in rows}

    for key, lines in (("2023-01-01", 3), ("2023-01-02", 2)):
        replace_partition(day(key, lines), QUARANTINED_ORDERS, uri, key)
    replace_partition(day("2023-01-02", 4), QUARANTINED_ORDERS, uri, "2023-01-02")
    assert lines_by_day() == {"2023-01-01": 3, "2023-01-02": 4}

    clear_partition(spark, QUARANTINED_ORDERS, uri, "2023-01-02")
    assert lines_by_day() == {"2023-01-01": 3}
    [delete] = history(spark, uri, 1).collect()
    assert delete["operation"] == "DELETE"
    assert delete["operationMetrics"]["numAddedFiles"] == "0"  # whole files dropped, none rewritten

    clear_partition(spark, QUARANTINED_ORDERS, str(tmp_path / "new_table"), "2023-01-02")
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
