"""`make demo`: land the sample files, run the job for each sample day, print the result."""

import os
import shutil
import sys

from dagster import DagsterInstance
from pyspark.sql import SparkSession

from order_tracking import settings
from order_tracking.definitions import defs
from order_tracking.sample_data import land_sample_files

SAMPLE_DAYS = ["2023-01-01", "2023-01-02", "2023-01-03", "2023-01-04", "2023-01-05"]


def main() -> int:
    data_dir = settings.data_dir()
    for folder in (settings.landing_uri(), settings.lakehouse_uri()):
        shutil.rmtree(folder, ignore_errors=True)  # re-running the demo starts clean
    landed = land_sample_files(settings.data_dir() / "landing")
    print(f"Landed {len(landed)} sample files in {settings.landing_uri()}")

    job = defs.get_job_def("order_tracking_job")
    merges = []
    with DagsterInstance.get() as instance:
        for day in SAMPLE_DAYS:
            result = job.execute_in_process(partition_key=day, instance=instance)
            if not result.success:
                print(f"run for {day} failed", file=sys.stderr)
                return 1
            meta = {
                m.asset_key.to_user_string(): m.metadata
                for m in result.asset_materializations_for_node("order_tracking")
            }["order_tracking"]
            merges.append((day, *(meta[k].value for k in ("inserted", "updated", "skipped_as_stale", "dagster/row_count"))))

    print("\nPer-partition merge counts")
    print(f"{'partition':<12}{'inserted':>10}{'updated':>10}{'stale':>8}{'rows':>8}")
    for day, inserted, updated, stale, rows in merges:
        print(f"{day:<12}{inserted:>10}{updated:>10}{stale:>8}{rows:>8}")

    spark = SparkSession.getActiveSession()  # the session the runs used
    table = spark.read.format("delta").load(os.path.join(settings.lakehouse_uri(), "order_tracking"))
    print(f"\norder_tracking ({table.count()} rows) in {settings.lakehouse_uri()}/order_tracking")
    table.orderBy("tracking_num").select(
        "order_num", "tracking_num", "pck_recieved_date", "package_deliver_date", "status",
        "address", "last_update_timestamp", "_source_file", "_source_line",
    ).show(100, truncate=False)
    print(f"Data directory: {data_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
