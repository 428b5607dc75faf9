"""The insight assets: status history, daily status mix and KPIs.

The expected values for the five sample days were worked out by hand from the files (each key's
reports in timestamp order, written down in this file; the daily figures, STATUS_MIX and KPIS, are
in helpers.py because the daemon and Databricks tests expect them too), not by the code under test.
"""

from datetime import date, datetime

import pytest
from dagster import materialize
from pyspark.sql import Row

from order_tracking.assets import order_insights, order_tracking_pipeline
from order_tracking.checks import check_history_chains
from order_tracking.delta import history as delta_history
from order_tracking.delta import replace_rows_of_keys
from order_tracking.partitions import RANGE_END_TAG, RANGE_START_TAG
from order_tracking.sample_data import sample_files
from order_tracking.schema import HISTORY_SCHEMA
from order_tracking.transforms.history import status_versions
from order_tracking_tests.helpers import (
    KPI_NAMES,
    KPIS,
    SAMPLE_DAYS,
    STATUS_MIX,
    at,
    land,
    materializations,
    staged_order,
)

pytestmark = pytest.mark.quick

ASSETS = [order_tracking_pipeline, order_insights]


def table(spark, lakehouse_dir, name):
    return spark.read.format("delta").load(str(lakehouse_dir / name))


def run_range(resources, first, last):
    result = materialize(ASSETS, resources=resources, tags={RANGE_START_TAG: first, RANGE_END_TAG: last})
    assert result.success
    return result


def land_sample_days(landing_dir, days=range(1, 6)):
    for day in days:
        path = sample_files()[day - 1]
        land(landing_dir, path.name, path.read_bytes(), at(day))


# Versions whose status is less far along than the one before, over the five days.
BACKWARD_STEPS = {
    "Returned → Delivered": 5,  # TRK1000, 1006, 1009, 1011, 1020
    "Delivered → Out for Delivery": 5,  # TRK1002, 1003, 1005 (twice), 1009
    "Delivered → In Transit": 4,  # TRK1000, 1010, 1013, 1019
    "Returned → Delayed": 3,  # TRK1004, 1006, 1015
    "Out for Delivery → In Transit": 2,  # TRK1002, 1012
    "Delivered → Delayed": 1,  # TRK1007
    "Returned → In Transit": 1,  # TRK1017
}


def ts(text):
    return datetime.fromisoformat(text)


def test_sample_days_give_the_hand_computed_history_and_figures(spark, local_resources, landing_dir, lakehouse_dir):
    land_sample_days(landing_dir)
    result = run_range(local_resources, SAMPLE_DAYS[0], SAMPLE_DAYS[-1])

    history = table(spark, lakehouse_dir, "order_status_history")
    assert history.count() == 85  # versions: 4+4+5+3+5+5+5+4+3+4+4+4+4+4+3+4+3+4+3+4+3+2+1
    # TRK1019: its Out for Delivery arrived late (day 4's file, timestamped day 3) and sits
    # between In Transit and Delivered; its Delivered came in days 4 and 5: the later file opens it.
    chain = [
        (r.status, r.valid_from, r.valid_to, r.is_current, r.events, r._source_file, r._source_line)
        for r in history.where("tracking_num = 'TRK1019'").orderBy("valid_from").collect()
    ]
    assert chain == [
        ("Delivered", ts("2023-01-01 19:31:06"), ts("2023-01-02 04:46:02"), False, 1,
         "raw/dt=2023-01-01/order_tracking_2023_01_01.csv", 21),
        ("In Transit", ts("2023-01-02 04:46:02"), ts("2023-01-03 20:29:03"), False, 1,
         "raw/dt=2023-01-02/order_tracking_2023_01_02.csv", 21),
        ("Out for Delivery", ts("2023-01-03 20:29:03"), ts("2023-01-04 14:00:58"), False, 1,
         "raw/dt=2023-01-04/order_tracking_2023_01_04.csv", 2),
        ("Delivered", ts("2023-01-04 14:00:58"), None, True, 1,
         "raw/dt=2023-01-05/order_tracking_2023_01_05.csv", 4),
    ]  # fmt: skip
    # TRK1001's In Transit of day 3 and of day 4 are one version of two reports.
    [version] = history.where("tracking_num = 'TRK1001' AND valid_from = '2023-01-03 16:09:16'").collect()
    assert (version.status, version.events, version.last_update_timestamp) == (
        "In Transit", 2, ts("2023-01-04 00:27:24")
    )

    mix = table(spark, lakehouse_dir, "order_status_daily").collect()
    assert {
        day: {r.status: r.orders for r in mix if r.day.isoformat() == day} for day in SAMPLE_DAYS
    } == STATUS_MIX
    kpis = {r.day.isoformat(): r for r in table(spark, lakehouse_dir, "order_kpis_daily").collect()}
    assert {day: tuple(kpis[day][n] for n in KPI_NAMES) for day in SAMPLE_DAYS} == KPIS
    assert {kpis[day].on_time_rate for day in SAMPLE_DAYS} == {1.0}
    assert [kpis[day].on_time_deliveries for day in SAMPLE_DAYS] == [5, 5, 2, 7, 1]
    assert {kpis[day].open_older_than_7_days for day in SAMPLE_DAYS} == {0}

    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["history_is_contiguous"].passed
    assert checks["history_matches_order_tracking"].passed
    backwards = checks["status_goes_backwards"]
    assert not backwards.passed
    assert backwards.metadata["by_transition"].value == BACKWARD_STEPS

    # Each day's figures are its partition's metadata (the UI plots them across days).
    [day5] = [m for m in materializations(result, "order_kpis_daily") if m.partition == "2023-01-05"]
    assert (day5.metadata["deliveries"].value, day5.metadata["open_older_than_3_days"].value) == (1, 8)
    [mix5] = [m for m in materializations(result, "order_status_daily") if m.partition == "2023-01-05"]
    assert mix5.metadata["orders_returned"].value == 11
    assert [r.data["orders"] for r in mix5.metadata["status_mix"].records] == [3, 1, 8, 11]


# --- The transforms and the MERGE, on hand-made events ------------------------------------------


def event(ts_text, status, landed_day=1, line=2, source="raw/a.csv"):
    return staged_order("TRK1", ts_text, landed_day, source, line, status=status)


def versions(orders, *events):
    rows = status_versions(orders(*events), "run").orderBy("valid_from").collect()
    return [(r.status, str(r.valid_from), str(r.valid_to) if r.valid_to else None, r.events) for r in rows]


def test_a_late_event_splits_a_version_and_a_replay_changes_nothing(orders):
    in_transit = [event("2023-01-01 10:00:00", "In Transit"), event("2023-01-01 12:00:00", "In Transit")]
    assert versions(orders, *in_transit) == [("In Transit", "2023-01-01 10:00:00", None, 2)]
    late = event("2023-01-01 11:00:00", "Delayed", landed_day=3)
    assert versions(orders, *in_transit, late) == [
        ("In Transit", "2023-01-01 10:00:00", "2023-01-01 11:00:00", 1),
        ("Delayed", "2023-01-01 11:00:00", "2023-01-01 12:00:00", 1),
        ("In Transit", "2023-01-01 12:00:00", None, 1),
    ]
    # The same report again, from a later file: the same versions.
    replay = event("2023-01-01 11:00:00", "Delayed", landed_day=4, source="raw/b.csv")
    assert versions(orders, *in_transit, late, replay) == versions(orders, *in_transit, late)


def test_a_late_event_can_join_two_versions(orders):
    reports = [event("2023-01-01 10:00:00", "Delayed"), event("2023-01-01 12:00:00", "Delayed")]
    split = [*reports, event("2023-01-01 11:00:00", "In Transit")]
    assert len(versions(orders, *split)) == 3
    # A later, newer report for 11:00 of the same file and time: the later line wins the tie.
    corrected = event("2023-01-01 11:00:00", "Delayed", line=9)
    assert versions(orders, *split, corrected) == [("Delayed", "2023-01-01 10:00:00", None, 3)]


def _history_rows(spark, *rows):
    return spark.createDataFrame([Row(**row) for row in rows], HISTORY_SCHEMA)


def _version(key, valid_from, status, valid_to=None, run="run"):
    return dict(
        tracking_num=key, order_num=1, status=status, valid_from=ts(valid_from),
        valid_to=ts(valid_to) if valid_to else None, is_current=valid_to is None,
        last_update_timestamp=ts(valid_from), events=1, pck_recieved_date=date(2023, 1, 1),
        package_deliver_date=date(2023, 1, 5), _source_file="raw/a.csv", _source_line=2,
        _landed_at=ts("2023-01-01 12:00:00"), _partition_date=date(2023, 1, 1), _run_id=run,
    )  # fmt: skip


def test_replacing_a_keys_rows_deletes_updates_and_inserts_in_one_commit(spark, tmp_path):
    from order_tracking.catalog import ORDER_STATUS_HISTORY

    uri = ORDER_STATUS_HISTORY.ensure(spark, str(tmp_path / "history"))
    old = [
        _version("K1", "2023-01-01 10:00:00", "In Transit", "2023-01-02 10:00:00"),
        _version("K1", "2023-01-02 10:00:00", "Delivered"),
        _version("K2", "2023-01-01 09:00:00", "Delayed"),  # another key: untouched
    ]
    _history_rows(spark, *old).write.format("delta").mode("append").save(uri)
    new = [
        _version("K1", "2023-01-01 10:00:00", "In Transit", "2023-01-01 20:00:00"),  # updated
        _version("K1", "2023-01-01 20:00:00", "Delivered"),  # inserted; 01-02 10:00 deleted
    ]
    done = replace_rows_of_keys(
        spark, uri, _history_rows(spark, *new), ("K1", "K1"), ("tracking_num", "valid_from"), "tag", ("_run_id",)
    )
    assert (done.inserted, done.updated, done.deleted) == (1, 1, 1)
    rows = spark.read.format("delta").load(uri).orderBy("tracking_num", "valid_from").collect()
    assert [(r.tracking_num, str(r.valid_from), r.status) for r in rows] == [
        ("K1", "2023-01-01 10:00:00", "In Transit"),
        ("K1", "2023-01-01 20:00:00", "Delivered"),
        ("K2", "2023-01-01 09:00:00", "Delayed"),
    ]
    # The same rows again, from another run: nothing to write, no commit.
    versions_before = delta_history(spark, uri).count()
    again = [dict(row, _run_id="other") for row in new]
    done = replace_rows_of_keys(
        spark, uri, _history_rows(spark, *again), ("K1", "K1"), ("tracking_num", "valid_from"), "tag2", ("_run_id",)
    )
    assert done.changed == 0
    assert delta_history(spark, uri).count() == versions_before


def chains_of(spark, *chains):
    """History rows (tracking_num, valid_from, valid_to, is_current, status) from chains of
    (status, valid_from hour, valid_to hour or None, is_current) on 2023-01-01."""
    hour = lambda h: None if h is None else datetime(2023, 1, 1, h)  # noqa: E731
    return spark.createDataFrame(
        [(key, hour(start), hour(end), current, status) for key, chain in chains for status, start, end, current in chain],
        "tracking_num string, valid_from timestamp, valid_to timestamp, is_current boolean, status string",
    )  # fmt: skip


def test_the_chain_checks_find_broken_chains_and_backward_steps(spark):
    good = ("TRK1", [("In Transit", 1, 2, False), ("Delivered", 2, 3, False), ("In Transit", 3, None, True)])
    gap = ("TRK2", [("In Transit", 1, 2, False), ("Delivered", 5, None, True)])
    two_current = ("TRK3", [("Returned", 1, None, True), ("Delivered", 2, None, True)])
    repeated = ("TRK4", [("Delayed", 1, 2, False), ("Delayed", 2, None, True)])

    contiguous, backwards = check_history_chains(chains_of(spark, good, gap, two_current, repeated))

    assert not contiguous.passed
    # TRK2's first version ends where no version starts; TRK3's first is current with a successor;
    # TRK4's second repeats the status.
    assert (contiguous.metadata["broken_versions"].value, contiguous.metadata["broken_keys"].value) == (3, 3)
    assert [r["tracking_num"] for r in contiguous.metadata["sample"].value] == ["TRK2", "TRK3", "TRK4"]
    assert not backwards.passed
    assert backwards.metadata["by_transition"].value == {"Delivered → In Transit": 1, "Returned → Delivered": 1}
    assert backwards.metadata["sample"].value == [
        {"tracking_num": "TRK1", "valid_from": "2023-01-01T03:00:00", "from_status": "Delivered", "to_status": "In Transit"},
        {"tracking_num": "TRK3", "valid_from": "2023-01-01T02:00:00", "from_status": "Returned", "to_status": "Delivered"},
    ]  # fmt: skip

    forward = ("TRK5", [("In Transit", 1, 2, False), ("Delivered", 2, None, True)])
    contiguous, backwards = check_history_chains(chains_of(spark, forward))
    assert contiguous.passed and backwards.passed
    assert (contiguous.metadata["broken_versions"].value, backwards.metadata["backward_steps"].value) == (0, 0)
