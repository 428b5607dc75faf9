"""The pure DataFrame transforms: line numbering, parsing, de-duplication and the sequence.

No Dagster and no storage layout here; only the functions in order_tracking.transforms.
"""


import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from order_tracking import schema
from order_tracking.transforms.sequence import latest_per_tracking_num, newer_than
from order_tracking.transforms.parse import (
    DATE_FORMAT,
    TIMESTAMP_FORMATS,
    RawFile,
    date_of,
    read_numbered_lines,
    timestamp_of,
)
from order_tracking_tests.helpers import HEADER, at, land, staged_order

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

    numbered = {(r[schema.SOURCE_FILE], r[schema.SOURCE_LINE]): r["value"] for r in rows}
    assert len(numbered) == len(rows) == 2001 + 3
    assert numbered[("big.csv", 1)] == HEADER
    assert numbered[("big.csv", 2)].startswith("0,TRK0,")
    assert numbered[("big.csv", 2001)].startswith("1999,TRK1999,")
    assert [numbered[("small.csv", n)] for n in (1, 2, 3)] == ["a", "b", "c"]


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
        staged_order("TRK1", "2023-01-01 10:00:00", 1, "a.csv", 2, "Order Placed"),
        staged_order("TRK1", "2023-01-01 12:00:00", 1, "a.csv", 3, "Delivered"),
        staged_order("TRK1", "2023-01-01 11:00:00", 1, "a.csv", 4, "In Transit"),
        staged_order("TRK2", "2023-01-01 09:00:00", 1, "a.csv", 5),
    )
    expected = orders(
        staged_order("TRK1", "2023-01-01 12:00:00", 1, "a.csv", 3, "Delivered"),
        staged_order("TRK2", "2023-01-01 09:00:00", 1, "a.csv", 5),
    )
    assertDataFrameEqual(latest_per_tracking_num(staged), expected)


def test_timestamp_ties_go_to_the_later_landed_file_then_the_later_line(orders):
    staged = orders(
        staged_order("TRK1", "2023-01-01 10:00:00", 2, "b.csv", 2, "later file"),
        staged_order("TRK1", "2023-01-01 10:00:00", 1, "a.csv", 9, "earlier file"),
        staged_order("TRK2", "2023-01-01 10:00:00", 1, "a.csv", 3, "earlier line"),
        staged_order("TRK2", "2023-01-01 10:00:00", 1, "a.csv", 7, "later line"),
    )
    winners = {r.tracking_num: r.status for r in latest_per_tracking_num(staged).collect()}
    assert winners == {"TRK1": "later file", "TRK2": "later line"}


def test_newer_than_orders_by_the_whole_sequence(spark):
    earlier, later = staged_order("T", "2023-01-01 10:00:00", 1, "a", 2), [
        staged_order("T", "2023-01-01 10:00:01", 1, "a", 2),  # later timestamp
        staged_order("T", "2023-01-01 10:00:00", 2, "a", 2),  # later landing
        staged_order("T", "2023-01-01 10:00:00", 1, "b", 2),  # later file name at the same landing
        staged_order("T", "2023-01-01 10:00:00", 1, "a", 3),  # later line
    ]
    pairs = spark.createDataFrame(
        [(later_row, earlier) for later_row in later], f"n {schema.STAGED_SCHEMA.simpleString()}, o {schema.STAGED_SCHEMA.simpleString()}"
    )
    forward = pairs.selectExpr(f"{newer_than('n', 'o')} AS newer").collect()
    backward = pairs.selectExpr(f"{newer_than('o', 'n')} AS newer").collect()
    same = pairs.selectExpr(f"{newer_than('o', 'o')} AS newer").collect()
    assert [r.newer for r in forward] == [True] * 4
    assert [r.newer for r in backward] == [False] * 4
    assert [r.newer for r in same] == [False] * 4
