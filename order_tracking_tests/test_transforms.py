"""The pure DataFrame transforms: line numbering, de-duplication and the merge sequence.

No Dagster and no storage layout here; only the functions in order_tracking.transforms.
"""

import json
from datetime import date, datetime

import pytest
from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from order_tracking import schema as s
from order_tracking.catalog import ORDER_TRACKING
from order_tracking.transforms.merge import (
    match_condition,
    merge_into_order_tracking,
    newer_than,
    summarize_source,
)
from order_tracking.transforms.parse import (
    DATE_FORMAT,
    TIMESTAMP_FORMATS,
    RawFile,
    date_of,
    latest_per_tracking_num,
    read_numbered_lines,
    timestamp_of,
)
from order_tracking_tests.helpers import HEADER, at, land

pytestmark = pytest.mark.quick  # the inner loop: make check


def test_lines_are_numbered_per_file_across_splits(spark, tmp_path):
    big = "\n".join([HEADER] + [f"{i},TRK{i},,,,,2023-01-01 00:00:00" for i in range(2000)])
    small = "a\nb\nc"
    files = [
        RawFile(str(land(tmp_path, "big.csv", big)), "big.csv", at(1)),
        RawFile(str(land(tmp_path, "small.csv", small)), "small.csv", at(2)),
    ]
    previous = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "4096")  # force many splits per file
    try:
        lines = read_numbered_lines(spark, files)
        assert lines.select(F.spark_partition_id()).distinct().count() > 1
        rows = lines.collect()
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", previous)

    numbered = {(r[s.SOURCE_FILE], r[s.SOURCE_LINE]): r["value"] for r in rows}
    assert len(numbered) == len(rows) == 2001 + 3
    assert numbered[("big.csv", 1)] == HEADER
    assert numbered[("big.csv", 2)].startswith("0,TRK0,")
    assert numbered[("big.csv", 2001)].startswith("1999,TRK1999,")
    assert [numbered[("small.csv", n)] for n in (1, 2, 3)] == ["a", "b", "c"]


def _order(tracking, ts, landed_day, source, line, status="In Transit"):
    return Row(
        order_num=1,
        tracking_num=tracking,
        pck_recieved_date=date(2023, 1, 1),
        package_deliver_date=date(2023, 1, 2),
        status=status,
        address="1 Main St",
        last_update_timestamp=datetime.fromisoformat(ts),
        _rescued_data=None,
        _source_file=source,
        _source_line=line,
        _landed_at=at(landed_day).replace(tzinfo=None),
        _partition_date=date(2023, 1, landed_day),
        _run_id="run",
    )


@pytest.fixture
def orders(spark):
    def build(*rows):
        return spark.createDataFrame(list(rows), s.STAGED_SCHEMA)

    return build


# Text of the cast's fast shape, and near misses on each side of it: invalid calendar values,
# signs, blanks, zones, a lower-case t, full-width digits, year zero.
TIMESTAMP_TEXTS = [
    "2023-01-05 10:00:00", "2023-01-05T10:00:00", "2023-01-05t10:00:00", "2024-02-29 10:00:00",
    "2023-02-29 10:00:00", "2023-01-05 24:00:00", "2023-01-05 10:60:00", "2023-01-05 10:00:60",
    "2023-00-05 10:00:00", "2023-01-00 10:00:00", "2023-01-05 1a:00:00", "+023-01-05 10:00:00",
    "-023-01-05 10:00:00", "0000-01-05 10:00:00", "2023-01-05 -1:00:00", "2023-01-05  1:00:00",
    "2023-01-05 10:00: 0", "2023-01-05 10:00:0Z", "\uff12023-01-05 10:00:00", "2023-01-05 10:00:00.5",
    "2023-01-05T10:00:00Z", "2023-01-05T10:00:00+02:00", "2023-01-05", "2023-1-5 1:2:3", "yesterday",
]
DATE_TEXTS = [
    "2023-01-05", "2024-02-29", "2023-02-29", "2023-13-01", "2023-00-01", "0000-01-01", "+023-01-01",
    "2023-01-1 ", "2023-01-1T", "2023-1-011", "20a3-01-01", "2023-1-5", "2023-01-05 10:00:00", "05/01/2023",
]


@pytest.mark.parametrize(
    "parse, patterns, texts",
    [
        (timestamp_of, lambda t: F.coalesce(*[F.try_to_timestamp(t, F.lit(f)) for f in TIMESTAMP_FORMATS]), TIMESTAMP_TEXTS),
        (date_of, lambda t: F.try_to_timestamp(t, F.lit(DATE_FORMAT)).cast("date"), DATE_TEXTS),
    ],
    ids=["timestamp", "date"],
)
def test_the_cast_fast_path_accepts_exactly_what_the_patterns_accept(spark, parse, patterns, texts):
    frame = spark.createDataFrame([(t,) for t in texts], "t string")
    # As strings: year 0 is a valid Spark value but not a Python datetime.
    rows = frame.select("t", parse(F.col("t")).cast("string"), patterns(F.col("t")).cast("string")).collect()
    assert [(t, ours) for t, ours, _ in rows] == [(t, expected) for t, _, expected in rows]
    assert rows[0][1] is not None and rows[1][1] is not None  # valid texts parse at all


def test_latest_row_wins_per_tracking_num(orders):
    staged = orders(
        _order("TRK1", "2023-01-01 10:00:00", 1, "a.csv", 2, "Order Placed"),
        _order("TRK1", "2023-01-01 12:00:00", 1, "a.csv", 3, "Delivered"),
        _order("TRK1", "2023-01-01 11:00:00", 1, "a.csv", 4, "In Transit"),
        _order("TRK2", "2023-01-01 09:00:00", 1, "a.csv", 5),
    )
    expected = orders(
        _order("TRK1", "2023-01-01 12:00:00", 1, "a.csv", 3, "Delivered"),
        _order("TRK2", "2023-01-01 09:00:00", 1, "a.csv", 5),
    )
    assertDataFrameEqual(latest_per_tracking_num(staged), expected)


def test_timestamp_ties_go_to_the_later_landed_file_then_the_later_line(orders):
    staged = orders(
        _order("TRK1", "2023-01-01 10:00:00", 2, "b.csv", 2, "later file"),
        _order("TRK1", "2023-01-01 10:00:00", 1, "a.csv", 9, "earlier file"),
        _order("TRK2", "2023-01-01 10:00:00", 1, "a.csv", 3, "earlier line"),
        _order("TRK2", "2023-01-01 10:00:00", 1, "a.csv", 7, "later line"),
    )
    winners = {r.tracking_num: r.status for r in latest_per_tracking_num(staged).collect()}
    assert winners == {"TRK1": "later file", "TRK2": "later line"}


def test_newer_than_orders_by_the_whole_sequence(spark):
    earlier, later = _order("T", "2023-01-01 10:00:00", 1, "a", 2), [
        _order("T", "2023-01-01 10:00:01", 1, "a", 2),  # later timestamp
        _order("T", "2023-01-01 10:00:00", 2, "a", 2),  # later landing
        _order("T", "2023-01-01 10:00:00", 1, "b", 2),  # later file name at the same landing
        _order("T", "2023-01-01 10:00:00", 1, "a", 3),  # later line
    ]
    pairs = spark.createDataFrame(
        [(later_row, earlier) for later_row in later], f"n {s.STAGED_SCHEMA.simpleString()}, o {s.STAGED_SCHEMA.simpleString()}"
    )
    forward = pairs.selectExpr(f"{newer_than('n', 'o')} AS newer").collect()
    backward = pairs.selectExpr(f"{newer_than('o', 'n')} AS newer").collect()
    same = pairs.selectExpr(f"{newer_than('o', 'o')} AS newer").collect()
    assert [r.newer for r in forward] == [True] * 4
    assert [r.newer for r in backward] == [False] * 4
    assert [r.newer for r in same] == [False] * 4


def test_merge_is_independent_of_order_and_repeats(spark, orders, tmp_path):
    day1 = orders(
        _order("TRK1", "2023-01-01 10:00:00", 1, "d1", 2, "In Transit"),
        _order("TRK2", "2023-01-01 11:00:00", 1, "d1", 3, "Delivered"),
    )
    day2 = orders(
        _order("TRK1", "2023-01-02 08:00:00", 2, "d2", 2, "Delivered"),
        _order("TRK2", "2023-01-01 09:00:00", 2, "d2", 3, "stale late row"),
        _order("TRK3", "2023-01-02 09:00:00", 2, "d2", 4, "Order Placed"),
    )
    results = []
    for name, sequence in {"forward": [day1, day2], "backward_repeated": [day2, day1, day2]}.items():
        table = ORDER_TRACKING.ensure(spark, str(tmp_path / name))
        counts = [
            merge_into_order_tracking(spark, table, day, f"{name}-{i}", summarize_source(day))
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
    day = orders(_order("TRK1", "2023-01-01 10:00:00", 1, "a.csv", 2))
    merge_into_order_tracking(spark, target, day, commit_tag="t", source=summarize_source(day))

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
        day = orders(*[_order(k, f"2023-01-01 {hour}:00:00", 1, "d", n, status) for n, k in enumerate(keys)])
        merge_into_order_tracking(spark, table, day, f"h{hour}", summarize_source(day))
    rows = spark.read.format("delta").load(table).collect()
    assert sorted((r.tracking_num, r.status) for r in rows) == sorted((k, "Delivered") for k in keys)
