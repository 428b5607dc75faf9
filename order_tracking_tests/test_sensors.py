"""order_files_sensor against a real GCS protocol server (fake-gcs-server): one scenario per test,
asserting the run requests and the new cursor. No runs are launched here."""

from datetime import datetime, timedelta, timezone

import pytest
from dagster import DagsterInstance, build_sensor_context

from order_tracking.definitions import defs
from order_tracking.resources.landing import LandingZone
from order_tracking.sensors import Cursor

pytestmark = pytest.mark.quick  # the inner loop: make check

SENSOR = defs.resolve_sensor_def("order_files_sensor")
PREFIX = "incoming"


@pytest.fixture
def tick(bucket):
    landing = LandingZone(uri=f"gs://{bucket.name}/{PREFIX}")

    def evaluate(cursor: str | None = None):
        with DagsterInstance.ephemeral() as instance:
            context = build_sensor_context(
                instance=instance, cursor=cursor, resources={"landing": landing}, definitions=defs
            )
            return SENSOR.evaluate_tick(context)

    return evaluate


def upload(bucket, name: str, content: bytes = b"order_num\n") -> int:
    blob = bucket.blob(f"{PREFIX}/{name}")
    blob.upload_from_string(content)
    return blob.generation


def test_new_files_become_one_run_per_partition(bucket, tick):
    g1 = upload(bucket, "order_tracking_2023_01_04.csv")
    g2 = upload(bucket, "order_tracking_2023_01_05.csv")
    g3 = upload(bucket, "late/order_tracking_2023_01_05_part2.csv.gz")

    result = tick()

    assert [(r.partition_key, r.job_name) for r in result.run_requests] == [
        ("2023-01-04", None), ("2023-01-05", None)
    ]
    assert all(r.run_key.startswith(r.partition_key + ":") for r in result.run_requests)
    assert Cursor.parse(result.cursor).requested == {
        "order_tracking_2023_01_04.csv": str(g1),
        "order_tracking_2023_01_05.csv": str(g2),
        "late/order_tracking_2023_01_05_part2.csv.gz": str(g3),
    }


def test_a_tick_with_nothing_new_skips(bucket, tick):
    upload(bucket, "order_tracking_2023_01_05.csv")
    first = tick()

    second = tick(first.cursor)

    assert second.run_requests == []
    assert "no new order files" in second.skip_message
    assert second.cursor == first.cursor


def test_a_reuploaded_file_is_requested_again(bucket, tick):
    upload(bucket, "order_tracking_2023_01_05.csv", b"v1\n")
    first = tick()
    upload(bucket, "order_tracking_2023_01_05.csv", b"v2\n")

    second = tick(first.cursor)

    [again] = second.run_requests
    assert again.partition_key == "2023-01-05"
    assert again.run_key != first.run_requests[0].run_key


def test_processed_files_leave_the_cursor(bucket, tick):
    upload(bucket, "order_tracking_2023_01_05.csv")
    first = tick()
    bucket.delete_blob(f"{PREFIX}/order_tracking_2023_01_05.csv")  # raw_order_files moved it

    second = tick(first.cursor)

    assert Cursor.parse(second.cursor).requested == {}


def test_non_order_objects_are_ignored_and_reported_once(bucket, tick):
    for name in ["_SUCCESS", "order_tracking_2023_01_05.csv.tmp", "folder/"]:
        upload(bucket, name)

    first = tick()
    second = tick(first.cursor)

    assert first.run_requests == [] and second.run_requests == []
    assert Cursor.parse(first.cursor).reported == {"_SUCCESS", "order_tracking_2023_01_05.csv.tmp"}
    assert "not an order file" in first.skip_message


def test_files_out_of_range_are_not_requested_and_say_why(bucket, tick):
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=2)).strftime("%Y_%m_%d")
    upload(bucket, f"order_tracking_{tomorrow}.csv")
    upload(bucket, "order_tracking_2022_12_31.csv")

    result = tick()

    assert result.run_requests == []
    assert "in the future" in result.skip_message
    assert "before the first partition 2023-01-01" in result.skip_message


def test_cursor_round_trip():
    cursor = Cursor(requested={"a.csv": "1", "b/c.csv": "2"}, reported={"_SUCCESS"})
    assert Cursor.parse(cursor.dump()) == cursor
    assert Cursor.parse(None) == Cursor()
