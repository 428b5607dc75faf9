"""Rebuilding from the raw zone on real tables: one tagged commit per table, the tables as the
catalog defines them (clustering kept), the raw zone and ledger untouched, and a rerun that
changes nothing. (That a rebuild equals the incremental path over random histories is part of
test_property.py.)"""

import pytest

from order_tracking.catalog import ORDER_STATUS_HISTORY, ORDER_TRACKING, RAW_FILE_LEDGER
from order_tracking.delta import latest_version
from order_tracking.rebuild import days_between, rebuild
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.landing import LandingZone
from order_tracking.sample_data import sample_files
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
