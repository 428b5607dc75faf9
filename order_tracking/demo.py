"""`make demo`: land the sample files, run the job over the sample days, print the result."""

import os
import shutil
import sys
from contextlib import nullcontext

from order_tracking import engine, settings
from order_tracking.sample_data import land_sample_files

# The demo prints the assets' own lines (per day and asset, as it goes) and then its summary; the
# full event log, Dagster's DEBUG events included, stays in the instance (see `make dev`).
PROGRESS_ONLY = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}

SAMPLE_DAYS = ["2023-01-01", "2023-01-02", "2023-01-03", "2023-01-04", "2023-01-05"]


def main() -> int:
    # The demo owns its folders under the data directory, whatever the landing and lakehouse
    # variables say: it wipes them to start clean and must never wipe a user's real data.
    data_dir = settings.data_dir()
    landing, lakehouse = data_dir / "landing", data_dir / "lakehouse"
    os.environ["ORDER_TRACKING_LANDING_URI"] = str(landing)
    os.environ["ORDER_TRACKING_LAKEHOUSE_URI"] = str(lakehouse)

    # The run attaches to the warm engine (or to ORDER_TRACKING_SPARK_REMOTE's). Its start (10-15
    # s of JVM) goes on while the files are landed and Dagster and the definitions imported; one
    # the demo starts is stopped again when it ends, so the demo leaves nothing running.
    remote = os.environ.get(settings.SPARK_REMOTE)
    with nullcontext() if remote else engine.starting() as endpoint:
        for folder in (landing, lakehouse):
            shutil.rmtree(folder, ignore_errors=True)
        landed = land_sample_files(landing)
        print(f"Landed {len(landed)} sample files in {landing}")
        from order_tracking.definitions import defs  # slow: imported while the engine starts

        return run_and_show(defs, data_dir, lakehouse, remote or endpoint().url)


def run_and_show(defs, data_dir, lakehouse, spark_url: str) -> int:
    from dagster import DagsterInstance

    from order_tracking.partitions import RANGE_END_TAG, RANGE_START_TAG
    from order_tracking.resources.spark import connect

    # The sample days in one run, as a backfill of the range runs them (BackfillPolicy.single_run).
    job = defs.resolve_job_def("order_tracking_job")
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            run_config=PROGRESS_ONLY,
            tags={RANGE_START_TAG: SAMPLE_DAYS[0], RANGE_END_TAG: SAMPLE_DAYS[-1]},
        )
    if not result.success:
        print(f"run {result.run_id} failed", file=sys.stderr)
        return 1
    print(f"{SAMPLE_DAYS[0]}...{SAMPLE_DAYS[-1]}: run {result.run_id} succeeded")
    print_day_summary(result)

    spark = connect(spark_url)
    table = spark.read.format("delta").load(str(lakehouse / "order_tracking"))
    print(f"\norder_tracking ({table.count()} rows) in {lakehouse / 'order_tracking'}")
    table.orderBy("tracking_num").select(
        "order_num", "tracking_num", "pck_recieved_date", "package_deliver_date", "status",
        "address", "last_update_timestamp", "_source_file", "_source_line",
    ).show(100, truncate=False)
    spark.stop()
    print(f"Data directory: {data_dir}")
    return 0


# One line per day: what each asset did, from the metadata each recorded for the day.
SUMMARY = [
    ("raw_order_files", "files_moved", "files"),
    ("staged_orders", "rows_staged", "staged"),
    ("staged_orders", "rows_quarantined", "quarantined"),
    ("order_tracking", "inserted", "inserted"),
    ("order_tracking", "updated", "updated"),
    ("order_tracking", "skipped_as_stale", "stale"),
    ("order_tracking", "dagster/row_count", "rows"),
]
# Then the day's figures (order_kpis_daily; definitions in docs/insights.md).
FIGURES = [
    ("order_kpis_daily", "orders_known", "known"),
    ("order_kpis_daily", "status_changes", "changes"),
    ("order_kpis_daily", "deliveries", "delivered"),
    ("order_kpis_daily", "on_time_rate", "on_time"),
    ("order_kpis_daily", "transit_days_p50", "transit_p50"),
    ("order_kpis_daily", "open_orders", "open"),
    ("order_kpis_daily", "open_older_than_3_days", "open_>3d"),
    ("order_kpis_daily", "late_lines_received", "late_lines"),
]


def print_day_summary(result) -> None:
    days: dict[str, dict[tuple[str, str], int]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        asset = materialization.asset_key.to_user_string()
        for key, value in materialization.metadata.items():
            days.setdefault(materialization.partition, {})[(asset, key)] = value.value
    for columns in (SUMMARY, FIGURES):
        print(f"\n{'day':<12}" + "".join(f"{label:>12}" for *_, label in columns))
        for day in sorted(days):
            print(f"{day:<12}" + "".join(f"{days[day].get((a, k), '-'):>12}" for a, k, _ in columns))


if __name__ == "__main__":
    sys.exit(main())
