"""figures_restatement_sensor: when late lines change the status history, every materialized day
whose figures that change reaches is recomputed by a run, so the tables and Dagster's metadata
of those days stay current.

A history rebuild records, in its materialization's metadata, the first day whose figures it may
have changed (`figures_changed_from`: no status before its earliest event can have changed). A day
is stale when its figures were last materialized before that rebuild: the days before the run's
own (late lines) and the days after it (a backfill of an old day). The sensor requests one range
run of the two figure assets over the stale days; the run's own days were recomputed in its step,
after the rebuild, and are not stale.

Why a sensor and not the day's step: a run can only materialize its own partitions, and a table
rewritten for other days without their materializations would leave their metadata stale. Why
not a schedule over a trailing window: a late line can reach back further than any window, and
most days need no restatement at all.
"""

from dataclasses import dataclass

from dagster import (
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    sensor,
)

from order_tracking.assets.insights import KPIS_DAILY, STATUS_DAILY
from order_tracking.checks import HISTORY
from order_tracking.partitions import RANGE_END_TAG, RANGE_START_TAG

FIGURES = (STATUS_DAILY, KPIS_DAILY)
BATCH = 200

order_figures_job = define_asset_job(
    "order_figures_job",
    selection=list(FIGURES),
    description="Recompute the daily figures of a range of days from the status history (restatement).",
)


@dataclass(frozen=True)
class Change:
    storage_id: int  # of the history's materialization
    changed_from: str  # first day whose figures it may have changed


def stale_days(changes: list[Change], figures_storage_ids: dict[str, int]) -> list[str]:
    """Pure: the days with figures (`figures_storage_ids`: day -> storage id of its oldest
    current figure materialization) that one of `changes` came after."""
    return sorted(
        day
        for day, storage_id in figures_storage_ids.items()
        if any(day >= c.changed_from and storage_id < c.storage_id for c in changes)
    )


def figures_storage_ids(instance: DagsterInstance) -> dict[str, int]:
    """Per day with figures, the storage id of the older of its two figures' latest
    materializations (a day is as current as its older table)."""
    latest = [
        instance.get_latest_storage_id_by_partition(key, DagsterEventType.ASSET_MATERIALIZATION)
        for key in FIGURES
    ]
    days = set(latest[0]) | set(latest[1])
    return {day: min(ids.get(day, 0) for ids in latest) for day in days}


def build_restatement_sensor(interval_seconds: int, default_status: DefaultSensorStatus):
    @sensor(
        name="figures_restatement_sensor",
        job=order_figures_job,
        minimum_interval_seconds=interval_seconds,
        default_status=default_status,
        description="Recomputes the figures of the days that late lines changed (order_status_daily, order_kpis_daily).",
    )
    def figures_restatement_sensor(context: SensorEvaluationContext):
        after = int(context.cursor or 0)
        records = context.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=HISTORY, after_storage_id=after), limit=BATCH, ascending=True
        ).records
        if not records:
            return SkipReason("no new order_status_history materialization")
        cursor = str(records[-1].storage_id)
        changes = []
        for record in records:
            changed_from = record.asset_materialization.metadata.get("figures_changed_from")
            if changed_from is not None:
                changes.append(Change(record.storage_id, changed_from.value))
        days = stale_days(changes, figures_storage_ids(context.instance)) if changes else []
        if not days:
            return SensorResult(skip_reason=SkipReason("no day's figures are stale"), cursor=cursor)
        context.log.info(f"Restating the figures of {len(days)} day(s): {days[0]}...{days[-1]}")
        return SensorResult(
            run_requests=[
                RunRequest(
                    # One restatement per history change seen: a tick that repeats finds it done.
                    run_key=f"restate:{records[-1].storage_id}",
                    tags={RANGE_START_TAG: days[0], RANGE_END_TAG: days[-1]},
                )
            ],
            cursor=cursor,
        )

    return figures_restatement_sensor
