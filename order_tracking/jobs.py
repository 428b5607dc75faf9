from dagster import DefaultScheduleStatus, ScheduleDefinition, define_asset_job

from order_tracking.assets import order_insights, order_tracking_compaction, order_tracking_pipeline

order_tracking_job = define_asset_job(
    "order_tracking_job",
    selection=[order_tracking_pipeline, order_insights],
    description="Land, stage and merge one day of order files; then rebuild the touched orders' status history and the day's figures.",
)

order_tracking_compaction_job = define_asset_job(
    "order_tracking_compaction_job",
    selection=[order_tracking_compaction],
    description="Compact and cluster order_tracking (OPTIMIZE) so each day's MERGE reads few files.",
)


def build_compaction_schedule(default_status: DefaultScheduleStatus) -> ScheduleDefinition:
    return ScheduleDefinition(
        name="order_tracking_compaction_schedule",
        job=order_tracking_compaction_job,
        # Once a day, at an hour when files rarely land; a sensor run that comes anyway waits
        # for the writers' pool.
        cron_schedule="0 4 * * *",
        execution_timezone="UTC",
        default_status=default_status,
    )
