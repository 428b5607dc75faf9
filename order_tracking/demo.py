"""`make demo`: land the sample files, run the job over the sample days, print the result."""

import os
import shutil
import sys

from dagster import DagsterInstance

from order_tracking import engine, settings
from order_tracking.definitions import defs
from order_tracking.partitions import RANGE_END_TAG, RANGE_START_TAG
from order_tracking.resources.spark import connect
from order_tracking.sample_data import land_sample_files

# The demo prints its own summary; the full event log stays in the instance (see `make dev`).
QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

SAMPLE_DAYS = ["2023-01-01", "2023-01-02", "2023-01-03", "2023-01-04", "2023-01-05"]


def main() -> int:
    # The demo owns its folders under the data directory, whatever the landing and lakehouse
    # variables say: it wipes them to start clean and must never wipe a user's real data.
    data_dir = settings.data_dir()
    landing, lakehouse = data_dir / "landing", data_dir / "lakehouse"
    os.environ["ORDER_TRACKING_LANDING_URI"] = str(landing)
    os.environ["ORDER_TRACKING_LAKEHOUSE_URI"] = str(lakehouse)
    for folder in (landing, lakehouse):
        shutil.rmtree(folder, ignore_errors=True)
    landed = land_sample_files(landing)
    print(f"Landed {len(landed)} sample files in {landing}")

    # The run attaches to the warm engine; one the demo starts is stopped again when it ends,
    # so the demo leaves nothing running.
    with engine.running():
        return run_and_show(data_dir, lakehouse)


def run_and_show(data_dir, lakehouse) -> int:
    # The sample days in one run, as a backfill of the range runs them (BackfillPolicy.single_run).
    job = defs.resolve_job_def("order_tracking_job")
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            run_config=QUIET_RUN,
            tags={RANGE_START_TAG: SAMPLE_DAYS[0], RANGE_END_TAG: SAMPLE_DAYS[-1]},
        )
    if not result.success:
        print(f"run {result.run_id} failed", file=sys.stderr)
        return 1
    print(f"{SAMPLE_DAYS[0]}...{SAMPLE_DAYS[-1]}: run {result.run_id} succeeded")
    counts = ("inserted", "updated", "skipped_as_stale", "dagster/row_count")
    merges = sorted(
        (m.partition, *(m.metadata[k].value for k in counts))
        for m in result.asset_materializations_for_node("order_tracking")
    )

    print("\nPer-partition merge counts")
    print(f"{'partition':<12}{'inserted':>10}{'updated':>10}{'stale':>8}{'rows':>8}")
    for day, inserted, updated, stale, rows in merges:
        print(f"{day:<12}{inserted:>10}{updated:>10}{stale:>8}{rows:>8}")

    with engine.attached() as endpoint:
        spark = connect(endpoint.url)
        table = spark.read.format("delta").load(str(lakehouse / "order_tracking"))
        print(f"\norder_tracking ({table.count()} rows) in {lakehouse / 'order_tracking'}")
        table.orderBy("tracking_num").select(
            "order_num", "tracking_num", "pck_recieved_date", "package_deliver_date", "status",
            "address", "last_update_timestamp", "_source_file", "_source_line",
        ).show(100, truncate=False)
        spark.stop()
    print(f"Data directory: {data_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
