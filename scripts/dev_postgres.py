"""`make dev-postgres`: the Dagster UI on the production instance configuration, on a laptop.

deploy/dagster.production.yaml as shipped, its variables pointing at a throwaway PostgreSQL
cluster (runs, event logs, schedules, pool slots) and at fake-gcs-server (step logs), then
`dagster dev` on http://127.0.0.1:3000 with the sample files landed and the sensor stopped, so
that runs are launched from the UI. Ctrl-C stops everything; the cluster and its data are
removed (the lakehouse stays under the data directory).
"""

import os
import shutil
import sys

from google.cloud import storage

from order_tracking import engine, settings
from order_tracking.sample_data import land_sample_files
from order_tracking_devtools import postgres
from order_tracking_devtools.dagster_processes import PRODUCTION_INSTANCE, make_pool_rows, running_dagster_dev
from order_tracking_devtools.gcs_emulator import GcsEmulator
from order_tracking_devtools.ui import DagsterUI

BUCKET = "order-tracking-compute-logs"


def main() -> int:
    data = settings.data_dir() / "dev-postgres"
    shutil.rmtree(data, ignore_errors=True)
    land_sample_files(data / "landing")
    emulator = GcsEmulator().start()
    try:
        os.environ["STORAGE_EMULATOR_HOST"] = emulator.url
        storage.Client(project="dev").create_bucket(BUCKET)
        with postgres.throwaway_cluster() as cluster, engine.running():
            env = cluster.env() | {
                "DAGSTER_COMPUTE_LOG_BUCKET": BUCKET,
                "STORAGE_EMULATOR_HOST": emulator.url,
                "ORDER_TRACKING_LANDING_URI": str(data / "landing"),
                "ORDER_TRACKING_LAKEHOUSE_URI": str(data / "lakehouse"),
                "ORDER_TRACKING_SENSOR": "stopped",
            }
            home, log = data / "dagster_home", data / "dagster_dev.log"
            home.mkdir(parents=True)
            shutil.copy(PRODUCTION_INSTANCE, home / "dagster.yaml")
            make_pool_rows(home, env)  # as a deployment does once (docs/configuration.md)
            with running_dagster_dev(home, env, log, 3000, PRODUCTION_INSTANCE) as dagster:
                DagsterUI("http://127.0.0.1:3000").wait_until_ready(180, lambda: dagster.poll() is None)
                print(
                    f"The Dagster UI on PostgreSQL 127.0.0.1:{cluster.port} (database {postgres.DATABASE}):"
                    f" http://127.0.0.1:3000 (log: {log}). Ctrl-C stops it.",
                    flush=True,
                )
                try:
                    dagster.wait()
                except KeyboardInterrupt:
                    pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
