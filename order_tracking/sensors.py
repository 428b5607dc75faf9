"""order_files_sensor: each newly landed order file becomes a run of exactly its day's partition.

A tick lists only the landing prefix (processed files have left it), so it costs O(files waiting),
not O(files ever seen). The cursor remembers which (name, generation) pairs were already requested,
pruned to what is still waiting; a re-uploaded file has a new generation and is requested again.
"""

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from order_tracking.jobs import order_tracking_job
from order_tracking.partitions import is_order_file, out_of_range_reason, partition_for_file
from order_tracking.resources.landing import LandedFile, LandingZone


@dataclass
class Cursor:
    requested: dict[str, str] = field(default_factory=dict)  # name -> generation
    reported: set[str] = field(default_factory=set)  # names already logged as not processable

    @classmethod
    def parse(cls, text: str | None) -> "Cursor":
        if not text:
            return cls()
        data = json.loads(text)
        return cls(requested=data["requested"], reported=set(data["reported"]))

    def dump(self) -> str:
        return json.dumps(
            {"requested": self.requested, "reported": sorted(self.reported)}, sort_keys=True
        )


@dataclass
class TickPlan:
    run_requests: list[RunRequest]
    cursor: Cursor
    not_processable: dict[str, str]  # name -> why, for every waiting file we will not request
    newly_reported: list[str]


def run_key(partition_key: str, files: list[LandedFile]) -> str:
    identity = "\n".join(sorted(f"{f.name}\t{f.generation}" for f in files))
    return f"{partition_key}:{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


def plan_tick(waiting: list[LandedFile], cursor: Cursor, now: datetime) -> TickPlan:
    """Pure decision of one tick: which partitions to run for which new files."""
    new_by_partition: dict[str, list[LandedFile]] = defaultdict(list)
    not_processable: dict[str, str] = {}
    for file in waiting:
        if not is_order_file(file.name):
            not_processable[file.name] = "not an order file"
            continue
        partition_key = partition_for_file(file.name, file.landed_at)
        reason = out_of_range_reason(partition_key, now)
        if reason:
            not_processable[file.name] = reason
        elif cursor.requested.get(file.name) != file.generation:
            new_by_partition[partition_key].append(file)

    waiting_names = {f.name for f in waiting}
    next_cursor = Cursor(
        requested={n: g for n, g in cursor.requested.items() if n in waiting_names},
        reported={n for n in cursor.reported if n in not_processable},
    )
    requests = []
    for partition_key in sorted(new_by_partition):
        files = new_by_partition[partition_key]
        requests.append(
            RunRequest(
                run_key=run_key(partition_key, files),
                partition_key=partition_key,
                tags={"order_tracking/files": ",".join(sorted(f.name for f in files))[:1000]},
            )
        )
        next_cursor.requested.update({f.name: f.generation for f in files})
    newly_reported = sorted(set(not_processable) - cursor.reported)
    next_cursor.reported |= set(newly_reported)
    return TickPlan(requests, next_cursor, not_processable, newly_reported)


def build_order_files_sensor(interval_seconds: int, default_status: DefaultSensorStatus):
    @sensor(
        name="order_files_sensor",
        job=order_tracking_job,
        minimum_interval_seconds=interval_seconds,
        default_status=default_status,
        description="Runs the day's partition whenever new order files land.",
    )
    def order_files_sensor(context: SensorEvaluationContext, landing: LandingZone):
        cursor = Cursor.parse(context.cursor)
        plan = plan_tick(landing.list_files(), cursor, datetime.now(timezone.utc))
        for name in plan.newly_reported:
            context.log.info(f"Not processing {name}: {plan.not_processable[name]}")
        if plan.run_requests:
            return SensorResult(run_requests=plan.run_requests, cursor=plan.cursor.dump())
        why = "no new order files in landing"
        if plan.not_processable:
            why += f"; {len(plan.not_processable)} waiting file(s) not processable: " + "; ".join(
                f"{n} ({r})" for n, r in sorted(plan.not_processable.items())[:5]
            )
        return SensorResult(skip_reason=SkipReason(why), cursor=plan.cursor.dump())

    return order_files_sensor
