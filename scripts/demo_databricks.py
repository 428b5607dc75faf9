"""`make demo-databricks`: the production path without a workspace. Starts the local Databricks
stand-in, runs the five sample days through the real dagster-databricks launcher in the
databricks environment (on the stand-in's all-purpose cluster), prints the final table and the
launcher's calls, and stops the stand-in."""

import secrets
import shutil
import sys
import time
from collections import Counter

from pyspark.sql import SparkSession

from order_tracking import settings
from order_tracking.engine import local_spark_config
from order_tracking.sample_data import land_sample_files
from order_tracking_devtools.databricks_standin import DatabricksStandIn
from order_tracking_devtools.databricks_standin.operator import databricks_env, materialize

# Day 1 as the sensor runs a day; days 2-5 as a backfill runs a range: one run, one step each.
RUNS = ["2023-01-01", "2023-01-02...2023-01-05"]
CLUSTER = "0101-000000-demo"


def main() -> int:
    root = settings.data_dir() / "demo-databricks"
    shutil.rmtree(root, ignore_errors=True)
    land_sample_files(root / "landing")
    token = f"dapi{secrets.token_hex(16)}"  # a throwaway token the stand-in checks on every call
    standin = DatabricksStandIn(
        root / "standin",
        token=token,
        all_purpose_clusters=(CLUSTER,),
        cluster_env={"ORDER_TRACKING_IVY_DIR": str(settings.ivy_dir())},
    )
    with standin:
        print(f"Databricks stand-in on {standin.url} (DBFS and runs under {standin.root})")
        env = databricks_env(standin.url, token, root, ORDER_TRACKING_DATABRICKS_CLUSTER_ID=CLUSTER)
        started = time.monotonic()
        for days in RUNS:
            t = time.monotonic()
            completed = materialize(env, days)
            if completed.returncode != 0:
                print(completed.stderr[-5000:], file=sys.stderr)
                print(f"{days}: failed", file=sys.stderr)
                return 1
            print(f"{days}: one step on Databricks (stand-in) in {time.monotonic() - t:.0f} s")
        print(f"five days in {time.monotonic() - started:.0f} s")

        print("\nThe launcher's calls (method, path, status: count):")
        for (method, path, status), count in sorted(Counter(standin.calls).items()):
            print(f"  {method:4} {path:32} {status}: {count}")
        print("\nDatabricks runs:")
        for run in standin.runs.values():
            print(f"  {run.run_id} {run.run_name}: {run.life_cycle_state} {run.result_state}")

    spark = SparkSession.builder.config(map=local_spark_config()).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    table = spark.read.format("delta").load(str(root / "lakehouse" / "order_tracking"))
    print(f"\norder_tracking ({table.count()} rows):")
    table.select(
        "order_num",
        "tracking_num",
        "pck_recieved_date",
        "package_deliver_date",
        "status",
        "address",
        "last_update_timestamp",
    ).orderBy("tracking_num").show(100, truncate=False)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
