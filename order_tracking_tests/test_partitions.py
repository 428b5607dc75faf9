"""Which partition a file belongs to, and which landed objects count as order files. Pure Python."""

from datetime import datetime, timezone

import pytest

from order_tracking.partitions import (
    daily_partitions,
    is_order_file,
    out_of_range_reason,
    partition_for_file,
)

pytestmark = pytest.mark.quick  # the inner loop: make check

LANDED = datetime(2024, 3, 9, 23, 59, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("order_tracking_2023_01_05.csv", "2023-01-05"),
        ("orders-2023-01-05.csv", "2023-01-05"),
        ("orders_20230105.csv.gz", "2023-01-05"),
        ("exports/2023/orders_2023_01_05.csv", "2023-01-05"),
        ("orders_2023_01_05_late_rows_of_2023_01_04.csv", "2023-01-05"),
        ("orders_2023-01_05.csv", "2024-03-09"),  # mixed separators: not a date
        ("orders_2023_02_30.csv", "2024-03-09"),  # not a calendar day
        ("orders_1202301050.csv", "2024-03-09"),  # digits glued to more digits
        ("orders.csv", "2024-03-09"),  # no date: the UTC day it landed
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_partition_for_file(name, expected):
    assert partition_for_file(name, LANDED) == expected


def test_landing_day_is_utc():
    late_evening_in_new_york = datetime.fromisoformat("2024-03-09T21:00:00-05:00")
    assert partition_for_file("orders.csv", late_evening_in_new_york) == "2024-03-10"


@pytest.mark.parametrize(
    "name, expected",
    [
        ("order_tracking_2023_01_05.csv", True),
        ("ORDERS_2023_01_05.CSV", True),
        ("orders_2023_01_05.csv.gz", True),
        ("_SUCCESS", False),
        ("orders_2023_01_05.csv.tmp", False),
        (".orders_2023_01_05.csv", False),  # an upload in progress
        ("folder/", False),
        ("orders_2023_01_05.json", False),
    ],
)
def test_is_order_file(name, expected):
    assert is_order_file(name) is expected


def test_partitions_start_on_first_day_and_include_today():
    now = datetime(2023, 1, 7, 12, tzinfo=timezone.utc)
    keys = daily_partitions.get_partition_keys(current_time=now)
    assert keys[0] == "2023-01-01"
    assert keys[-1] == "2023-01-07"


def test_out_of_range_reasons():
    now = datetime(2023, 1, 7, 12, tzinfo=timezone.utc)
    assert out_of_range_reason("2023-01-07", now) is None
    assert "before the first partition" in out_of_range_reason("2022-12-31", now)
    assert "in the future" in out_of_range_reason("2023-01-08", now)
