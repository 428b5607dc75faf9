"""The arrival freshness check's judgement and the restatement sensor's choice of days: pure
functions, no Spark."""

from datetime import date, datetime, time, timezone

import pytest
from dagster import (
    AssetMaterialization,
    DagsterInstance,
    DefaultSensorStatus,
    Definitions,
    MetadataValue,
    build_sensor_context,
)

from order_tracking.assets import order_tracking_pipeline
from order_tracking.freshness import (
    Arrival,
    arrival_deadline,
    arrival_freshness_job,
    day_due,
    day_file_arrived_by_deadline,
    judge_arrival,
    judge_days,
)
from order_tracking.resources.landing import LandingZone
from order_tracking.restatement import Change, build_restatement_sensor, stale_days

pytestmark = pytest.mark.quick

SIX = time(6, 0)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "now, day",
    [
        ("2023-01-06 06:15", "2023-01-05"),  # 2023-01-05's deadline, 01-06 06:00, has passed
        ("2023-01-06 06:00", "2023-01-05"),
        ("2023-01-06 05:59", "2023-01-04"),  # not yet: the day before is the last due
    ],
)
def test_the_day_due_is_the_last_whose_deadline_passed(now, day):
    assert day_due(utc(now), SIX) == date.fromisoformat(day)


def test_a_file_on_time_passes_with_when_it_landed():
    arrivals = [Arrival("order_tracking_2023_01_05.csv", utc("2023-01-06 05:20"), "raw zone")]
    result = judge_arrival(date(2023, 1, 5), SIX, arrivals, utc("2023-01-06 06:15"))
    assert result.passed
    assert result.metadata["minutes_before_deadline"].value == 40
    assert result.metadata["files_seen"].value == 1
    assert result.metadata["landed_at"].value == utc("2023-01-06 05:20").timestamp()


def test_no_file_fails_with_the_day_and_minutes_late():
    result = judge_arrival(date(2023, 1, 5), SIX, [], utc("2023-01-06 06:15"))
    assert not result.passed
    assert result.severity.value == "ERROR"
    assert (result.metadata["day"].value, result.metadata["files_seen"].value) == ("2023-01-05", 0)
    assert result.metadata["minutes_late"].value == 15


def test_a_file_after_the_deadline_fails_with_how_late_it_was():
    arrivals = [
        Arrival("order_tracking_2023_01_05.csv", utc("2023-01-06 07:30"), "landing"),
        Arrival("late_20230105.csv", utc("2023-01-06 08:00"), "landing"),
    ]
    result = judge_arrival(date(2023, 1, 5), SIX, arrivals, utc("2023-01-06 09:00"))
    assert not result.passed
    assert result.severity.value == "WARN"
    assert (result.metadata["minutes_late"].value, result.metadata["files_seen"].value) == (90, 2)


def test_a_day_not_due_yet_passes_and_a_range_lists_its_late_days():
    not_due = judge_arrival(date(2023, 1, 5), SIX, [], utc("2023-01-05 23:00"))
    assert not_due.passed and "not due yet" in not_due.description
    late = judge_arrival(date(2023, 1, 4), SIX, [], utc("2023-01-05 23:00"))
    combined = judge_days([late, not_due])
    assert not combined.passed
    assert combined.severity.value == "ERROR"
    assert combined.metadata["days_late"].value == 1
    assert set(combined.metadata["by_day"].value) == {"2023-01-04", "2023-01-05"}


def test_the_deadline_is_configurable_and_checked(monkeypatch):
    monkeypatch.setenv("ORDER_TRACKING_ARRIVAL_DEADLINE", "04:30")
    assert arrival_deadline() == time(4, 30)
    monkeypatch.setenv("ORDER_TRACKING_ARRIVAL_DEADLINE", "half past four")
    with pytest.raises(ValueError, match="ORDER_TRACKING_ARRIVAL_DEADLINE"):
        arrival_deadline()


def test_the_check_reads_arrivals_from_the_metadata_and_the_landing_zone(tmp_path, monkeypatch):
    """Through Dagster: a day moved into the raw zone by a run whose metadata says when its file
    landed, judged by the check as the schedule runs it."""
    now = datetime.now(timezone.utc)
    day = day_due(now, arrival_deadline())
    instance = DagsterInstance.ephemeral()
    landed_at = datetime.combine(day, time(23, 0), tzinfo=timezone.utc)
    instance.report_runless_asset_event(
        AssetMaterialization(
            "raw_order_files",
            partition=day.isoformat(),
            metadata={"landed": MetadataValue.json([{"file": "f.csv", "landed_at": landed_at.isoformat()}])},
        )
    )
    defs = Definitions(
        assets=[order_tracking_pipeline],
        asset_checks=[day_file_arrived_by_deadline],
        jobs=[arrival_freshness_job],
        resources={"landing": LandingZone(uri=str(tmp_path)), "pyspark": None, "lakehouse": None, "step_launcher": None},
    )
    result = defs.resolve_job_def("arrival_freshness_job").execute_in_process(instance=instance)
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.passed
    assert evaluation.metadata["day"].value == day.isoformat()
    assert evaluation.metadata["files_seen"].value == 1


def test_stale_days_are_those_with_figures_older_than_a_change_they_follow():
    figures = {"2023-01-01": 10, "2023-01-02": 11, "2023-01-03": 30, "2023-01-04": 31}
    # A rebuild (storage id 20) of day 3 whose events reach back into day 2: day 2's figures are
    # stale, day 1's are before the change, days 3-4 were computed after it.
    assert stale_days([Change(20, "2023-01-02")], figures) == ["2023-01-02"]
    # A backfill of day 1 (storage id 40) after days 3-4: all later days are stale.
    assert stale_days([Change(40, "2023-01-01")], figures) == list(figures)
    assert stale_days([], figures) == []


def test_the_restatement_sensor_requests_a_run_over_the_stale_days():
    instance = DagsterInstance.ephemeral()
    for day in ("2023-01-01", "2023-01-02", "2023-01-03"):
        for asset in ("order_status_daily", "order_kpis_daily"):
            instance.report_runless_asset_event(AssetMaterialization(asset, partition=day))
    # Day 3's rebuild with a late line of day 1.
    instance.report_runless_asset_event(
        AssetMaterialization("order_status_history", partition="2023-01-03", metadata={"figures_changed_from": "2023-01-01"})
    )
    sensor = build_restatement_sensor(30, DefaultSensorStatus.STOPPED)
    result = sensor(build_sensor_context(instance=instance))
    [request] = result.run_requests
    assert (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]) == (
        "2023-01-01", "2023-01-03"
    )
    # The next tick has seen it: nothing more.
    again = sensor(build_sensor_context(instance=instance, cursor=result.cursor))
    assert not getattr(again, "run_requests", None)
