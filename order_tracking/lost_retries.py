"""lost_retry_sensor: a failed run that Dagster marked for its automatic retry (run_retries) but
never retried gets one run of the same work, once.

Why runs get lost: Dagster's retry daemon reads RUN_FAILURE events after a cursor and retries the
runs it then finds in FAILURE. When a run worker dies (killed, out of memory), the code server
that started it stores the RUN_FAILURE event first and sets the run's status in a second
statement; a daemon tick between the two finds the run still STARTED, passes over it and moves
its cursor past the event. The run keeps `dagster/will_retry=true` and never gets a retry
(dagster-io/dagster#33741 counts such runs in a production deployment; our CI met one after the
killed-run test). The day's MERGE would then wait for the next file or an operator.

A run is lost when it has failed, is marked to retry, has no retry (`dagster/auto_retry_run_id`)
and none of ours, and stays so for GRACE_SECONDS after this sensor first saw it: the daemon
retries within seconds (it ticks every 5 s), and when the daemon restarts after an outage, its
retries come before this sensor's grace ends. Backfill runs are left to the backfill daemon. The
new run is the failed run's partition or range again (the jobs are idempotent: README), tagged
with the run it stands for; the failed run is marked `dagster/will_retry=false`, so a daemon that
was only late does not retry it as well.
"""

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from order_tracking.jobs import order_tracking_job
from order_tracking.partitions import RANGE_END_TAG, RANGE_START_TAG
from order_tracking.restatement import order_figures_job

GRACE_SECONDS = 60.0
LOOKBACK = timedelta(days=1)  # runs that failed earlier were seen by a tick long ago
RETRY_OF_TAG = "order_tracking/retry_of"
JOBS = (order_tracking_job, order_figures_job)
# Dagster's own tags (public names, written by the run_retries machinery).
WILL_RETRY_TAG = "dagster/will_retry"
AUTO_RETRY_RUN_ID_TAG = "dagster/auto_retry_run_id"
BACKFILL_TAG = "dagster/backfill"
MAX_RETRIES_TAG = "dagster/max_retries"
PARTITION_TAG = "dagster/partition"
# What a run of the same work carries over: its partition or range, and our own tags.
KEPT_SYSTEM_TAGS = (PARTITION_TAG, RANGE_START_TAG, RANGE_END_TAG)


@dataclass(frozen=True)
class FailedRun:
    run_id: str
    job_name: str
    tags: dict[str, str]


def is_unretried(run: FailedRun) -> bool:
    return (
        run.tags.get(WILL_RETRY_TAG) == "true"
        and AUTO_RETRY_RUN_ID_TAG not in run.tags
        and BACKFILL_TAG not in run.tags
    )


def retry_request(run: FailedRun) -> RunRequest:
    tags = {k: v for k, v in run.tags.items() if k in KEPT_SYSTEM_TAGS or not k.startswith("dagster/")}
    tags[RETRY_OF_TAG] = run.run_id
    # It is the retry run_retries allowed (the shipped max_retries is 1): Dagster does not retry it.
    tags[MAX_RETRIES_TAG] = "0"
    return RunRequest(
        run_key=f"retry-of:{run.run_id}",
        job_name=run.job_name,
        partition_key=tags.pop(PARTITION_TAG, None),
        tags=tags,
    )


def plan_retries(
    unretried: list[FailedRun], first_seen: dict[str, float], now: float, grace: float = GRACE_SECONDS
) -> tuple[list[RunRequest], dict[str, float]]:
    """Pure: the runs to request for the `unretried` runs seen at least `grace` seconds ago, and
    when each of the others was first seen (the next cursor)."""
    requests, waiting = [], {}
    for run in unretried:
        seen = first_seen.get(run.run_id, now)
        if now - seen >= grace:
            requests.append(retry_request(run))
        else:
            waiting[run.run_id] = seen
    return requests, waiting


def unretried_runs(instance: DagsterInstance) -> list[FailedRun]:
    """The failed runs of our jobs marked to retry that have no retry, Dagster's or ours."""
    since = datetime.now(timezone.utc) - LOOKBACK
    found = []
    for job in JOBS:
        records = instance.get_run_records(
            RunsFilter(
                job_name=job.name,
                statuses=[DagsterRunStatus.FAILURE],
                tags={WILL_RETRY_TAG: "true"},
                updated_after=since,
            ),
            limit=100,
        )
        for record in records:
            run = record.dagster_run
            failed = FailedRun(run.run_id, run.job_name, dict(run.tags))
            if is_unretried(failed) and not instance.get_run_ids(RunsFilter(tags={RETRY_OF_TAG: run.run_id}), limit=1):
                found.append(failed)
    return found


def build_lost_retry_sensor(interval_seconds: int, default_status: DefaultSensorStatus):
    @sensor(
        name="lost_retry_sensor",
        jobs=list(JOBS),
        minimum_interval_seconds=interval_seconds,
        default_status=default_status,
        description="Reruns a failed run that Dagster marked for a retry but never retried.",
    )
    def lost_retry_sensor(context: SensorEvaluationContext):
        first_seen = json.loads(context.cursor) if context.cursor else {}
        requests, waiting = plan_retries(unretried_runs(context.instance), first_seen, time.time())
        for request in requests:
            failed = request.tags[RETRY_OF_TAG]
            context.log.warning(f"Dagster did not retry run {failed}: running its work again")
            # Dagster's daemon, were it only late, now passes over the run instead of retrying it
            # a second time (it reads this tag before it retries).
            context.instance.add_run_tags(failed, {WILL_RETRY_TAG: "false"})
        cursor = json.dumps(waiting, sort_keys=True)
        if requests:
            return SensorResult(run_requests=requests, cursor=cursor)
        why = f"{len(waiting)} failed run(s) waiting for Dagster's retry" if waiting else "no lost retry"
        return SensorResult(skip_reason=SkipReason(why), cursor=cursor)

    return lost_retry_sensor
