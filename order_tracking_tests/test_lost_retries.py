"""lost_retry_sensor: which failed runs count as lost (an ephemeral instance holding runs in each
state Dagster's retry machinery leaves), and the run that stands in for a lost retry. The race that
loses a retry in a real daemon (order_tracking/lost_retries.py) is not forced here; the killed-run
test of test_production_instance.py meets it when it happens."""

import json
import time
import uuid

import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, build_sensor_context

from order_tracking.definitions import defs
from order_tracking.lost_retries import (
    GRACE_SECONDS,
    RETRY_OF_TAG,
    FailedRun,
    plan_retries,
    retry_request,
)
from order_tracking.partitions import RANGE_END_TAG, RANGE_START_TAG

pytestmark = pytest.mark.quick  # the inner loop: make check

SENSOR = defs.resolve_sensor_def("lost_retry_sensor")
LOST = {"dagster/will_retry": "true", "dagster/partition": "2023-01-01", "order_tracking/files": "a.csv"}


def failed_run(tags: dict[str, str], job_name: str = "order_tracking_job") -> FailedRun:
    return FailedRun(str(uuid.uuid4()), job_name, tags)


def test_a_run_is_rerun_once_it_stayed_unretried_for_the_grace_period():
    run = failed_run(LOST)
    first, waiting = plan_retries([run], {}, now=1000.0)
    assert first == [] and waiting == {run.run_id: 1000.0}

    early, waiting = plan_retries([run], waiting, now=1000.0 + GRACE_SECONDS - 1)
    assert early == [] and waiting == {run.run_id: 1000.0}

    [request], waiting = plan_retries([run], waiting, now=1000.0 + GRACE_SECONDS)
    assert waiting == {}
    assert request.run_key == f"retry-of:{run.run_id}"


def test_a_run_that_got_its_retry_meanwhile_leaves_the_cursor():
    run = failed_run(LOST)
    _, waiting = plan_retries([run], {}, now=1000.0)
    requests, waiting = plan_retries([], waiting, now=2000.0)
    assert requests == [] and waiting == {}


def test_the_rerun_is_the_same_partition_or_range_and_is_not_retried_again():
    day = retry_request(failed_run(LOST | {"dagster/run_key": "2023-01-01:abc", "dagster/failure_reason": "RUN_WORKER_CRASH"}))
    assert (day.job_name, day.partition_key) == ("order_tracking_job", "2023-01-01")
    assert day.tags == {"order_tracking/files": "a.csv", RETRY_OF_TAG: day.tags[RETRY_OF_TAG], "dagster/max_retries": "0"}

    span = {"dagster/will_retry": "true", RANGE_START_TAG: "2023-01-02", RANGE_END_TAG: "2023-01-04"}
    figures = retry_request(failed_run(span, job_name="order_figures_job"))
    assert (figures.job_name, figures.partition_key) == ("order_figures_job", None)
    assert (figures.tags[RANGE_START_TAG], figures.tags[RANGE_END_TAG]) == ("2023-01-02", "2023-01-04")


def add_failed_run(instance: DagsterInstance, tags: dict[str, str], job_name: str = "order_tracking_job") -> str:
    run = DagsterRun(job_name=job_name, run_id=str(uuid.uuid4()), status=DagsterRunStatus.FAILURE, tags=tags)
    instance.add_run(run)
    return run.run_id


def test_only_failed_runs_marked_to_retry_without_any_retry_are_lost():
    with DagsterInstance.ephemeral() as instance:
        lost = add_failed_run(instance, LOST)
        add_failed_run(instance, LOST | {"dagster/auto_retry_run_id": "r"})  # Dagster retried it
        add_failed_run(instance, LOST | {"dagster/will_retry": "false"})  # out of retries
        add_failed_run(instance, LOST | {"dagster/backfill": "b"})  # the backfill daemon's
        add_failed_run(instance, LOST, job_name="order_tracking_compaction_job")  # not a day's data
        rerun = add_failed_run(instance, LOST)
        instance.add_run(DagsterRun(job_name="order_tracking_job", run_id=str(uuid.uuid4()), tags={RETRY_OF_TAG: rerun}))

        def tick(cursor=None):
            return SENSOR.evaluate_tick(build_sensor_context(instance=instance, cursor=cursor, definitions=defs))

        first = tick()
        assert first.run_requests == [] and "1 failed run(s) waiting" in first.skip_message
        assert list(json.loads(first.cursor)) == [lost]

        seen_long_ago = json.dumps({lost: time.time() - GRACE_SECONDS - 1})
        rerun = tick(seen_long_ago)
        [request] = rerun.run_requests
        assert (request.job_name, request.partition_key, request.tags[RETRY_OF_TAG]) == ("order_tracking_job", "2023-01-01", lost)
        # Dagster's daemon, were it only late, would now pass over the run; and no tick asks again.
        assert instance.get_run_by_id(lost).tags["dagster/will_retry"] == "false"
        again = tick(rerun.cursor)
        assert again.run_requests == [] and again.skip_message == "no lost retry"
