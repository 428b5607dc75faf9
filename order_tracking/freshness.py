"""Freshness of arrivals: operations expect each day's order file by a deadline, by default 06:00
UTC the next day (ORDER_TRACKING_ARRIVAL_DEADLINE=HH:MM). A check on raw_order_files, run by a
schedule shortly after the deadline, looks at the day whose deadline passed last.

Why not Dagster's own: a FreshnessPolicy (1.13) judges an asset's last materialization, not a
partition's, and build_time_partition_freshness_checks asks whether the newest partition was
materialized, which with end_offset=1 (today's partition exists) is today's, a day before its file
is due. What operations want is about the file, not the run: when did the day's file land? So
the check reads when each file of the day landed: for files already moved, from raw_order_files'
metadata (landed_at, recorded with each file); for files still waiting, from the landing zone.
No Spark: it runs in the Dagster process, on a laptop and in production alike.
"""

import os
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetRecordsFilter,
    AssetSelection,
    DefaultScheduleStatus,
    MetadataValue,
    ScheduleDefinition,
    asset_check,
    define_asset_job,
)

from order_tracking.assets.raw import RAW_ORDER_FILES
from order_tracking.daily import files_of_day
from order_tracking.resources.landing import LandingZone

DEADLINE_VARIABLE = "ORDER_TRACKING_ARRIVAL_DEADLINE"
# How long after the deadline the schedule evaluates the check.
GRACE = timedelta(minutes=15)


def arrival_deadline() -> time:
    """The time of day (UTC), on the next day, by which a day's file is due."""
    text = os.environ.get(DEADLINE_VARIABLE, "06:00")
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{DEADLINE_VARIABLE}={text!r} is not a time of day (HH:MM)") from None


def deadline_of(day: date, deadline: time) -> datetime:
    return datetime.combine(day + timedelta(days=1), deadline, tzinfo=timezone.utc)


def day_due(now: datetime, deadline: time) -> date:
    """The latest day whose deadline has passed at `now`."""
    day = now.astimezone(timezone.utc).date() - timedelta(days=1)
    return day if deadline_of(day, deadline) <= now else day - timedelta(days=1)


@dataclass(frozen=True)
class Arrival:
    name: str
    landed_at: datetime
    where: str  # "raw zone" (moved and recorded) or "landing" (still waiting)


def judge_arrival(day: date, deadline: time, arrivals: list[Arrival], now: datetime) -> AssetCheckResult:
    """Pure: the day's file arrived by its deadline? With when, what was seen, how late. A day
    not due yet passes (its file may still come)."""
    due = deadline_of(day, deadline)
    on_time = [a for a in arrivals if a.landed_at <= due]
    metadata = {
        "day": day.isoformat(),
        "deadline": MetadataValue.timestamp(due),
        "files_seen": len(arrivals),
        "files": MetadataValue.json(
            [
                {"file": a.name, "landed_at": a.landed_at.isoformat(), "where": a.where}
                for a in sorted(arrivals, key=lambda a: a.landed_at)
            ]
        ),
    }
    if on_time:
        first = min(a.landed_at for a in on_time)
        metadata["landed_at"] = MetadataValue.timestamp(first)
        metadata["minutes_before_deadline"] = round((due - first).total_seconds() / 60)
        description = f"{day}: file landed {metadata['minutes_before_deadline']} min before the deadline"
    elif now < due:
        description = f"{day}: not due yet (deadline {due:%Y-%m-%d %H:%M} UTC)"
    else:
        late_until = min((a.landed_at for a in arrivals), default=now)
        metadata["minutes_late"] = round((late_until - due).total_seconds() / 60)
        if arrivals:
            metadata["landed_at"] = MetadataValue.timestamp(late_until)
        description = f"{day}: no file by the deadline; {metadata['minutes_late']} min late" + (
            " (landed since)" if arrivals else " (none seen yet)"
        )
    return AssetCheckResult(
        passed=bool(on_time) or now < due,
        severity=AssetCheckSeverity.WARN if on_time or arrivals else AssetCheckSeverity.ERROR,
        metadata=metadata,
        description=description,
    )


def judge_days(results: list[AssetCheckResult]) -> AssetCheckResult:
    """One result for a run of several days: passed if every day did; the late days listed."""
    if len(results) == 1:
        return results[0]
    late = [r for r in results if not r.passed]
    return AssetCheckResult(
        passed=not late,
        severity=AssetCheckSeverity.ERROR
        if any(r.severity == AssetCheckSeverity.ERROR for r in late)
        else AssetCheckSeverity.WARN,
        metadata={
            "days": len(results),
            "days_late": len(late),
            "by_day": MetadataValue.json({r.metadata["day"].value: r.description for r in results}),
        },
        description=f"{len(late)} of {len(results)} days' files missed their deadline",
    )


def recorded_arrivals(context: AssetCheckExecutionContext, day: date) -> list[Arrival]:
    """The day's files already moved into the raw zone, from raw_order_files' metadata."""
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=RAW_ORDER_FILES, asset_partitions=[day.isoformat()]), limit=100
    ).records
    arrivals = {}
    for record in records:
        landed = record.asset_materialization.metadata.get("landed")
        for entry in landed.value if landed else []:
            landed_at = datetime.fromisoformat(entry["landed_at"])
            if landed_at.tzinfo is None:  # landing times are UTC
                landed_at = landed_at.replace(tzinfo=timezone.utc)
            arrivals[entry["file"]] = Arrival(entry["file"], landed_at, "raw zone")
    return list(arrivals.values())


@asset_check(
    asset=RAW_ORDER_FILES,
    name="day_file_arrived_by_deadline",
    description=(
        "The day's file landed by its deadline (default 06:00 UTC the next day,"
        f" {DEADLINE_VARIABLE}): on its schedule, the day whose deadline passed last; in a run of"
        " raw_order_files, the run's days."
    ),
)
def day_file_arrived_by_deadline(context: AssetCheckExecutionContext, landing: LandingZone) -> AssetCheckResult:
    now, deadline = datetime.now(timezone.utc), arrival_deadline()
    # Selected with raw_order_files (a day's run, a backfill) it judges the run's days; alone (the
    # schedule's job, unpartitioned) the day just due.
    days = (
        [date.fromisoformat(key) for key in context.partition_keys]
        if context.has_partition_key_range or context.has_partition_key
        else [day_due(now, deadline)]
    )
    waiting = landing.list_files()
    results = []
    for day in days:
        waiting_of_day = [Arrival(f.name, f.landed_at, "landing") for f in files_of_day(waiting, day.isoformat())]
        results.append(judge_arrival(day, deadline, recorded_arrivals(context, day) + waiting_of_day, now))
    return judge_days(results)


arrival_freshness_job = define_asset_job(
    "arrival_freshness_job",
    selection=AssetSelection.checks(day_file_arrived_by_deadline),
    description="Did the day's order file land by its deadline?",
)


def build_arrival_schedule(default_status: DefaultScheduleStatus) -> ScheduleDefinition:
    at = (datetime.combine(date.today(), arrival_deadline()) + GRACE).time()
    return ScheduleDefinition(
        name="arrival_freshness_schedule",
        job=arrival_freshness_job,
        cron_schedule=f"{at.minute} {at.hour} * * *",
        execution_timezone="UTC",
        default_status=default_status,
    )
