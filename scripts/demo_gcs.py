"""`make demo-gcs`: the sensor-driven flow on a laptop. Starts fake-gcs-server on 127.0.0.1, runs
`dagster dev` (webserver + daemon) with the landing zone in an emulated bucket and the sensor on,
uploads the five sample files one by one, and keeps the Dagster UI up until Ctrl-C."""

import os
import shutil
import sys
import time

from google.cloud import storage

from order_tracking import engine, settings
from order_tracking.sample_data import sample_files
from order_tracking_devtools.ui import DagsterUI
from order_tracking_devtools.dagster_processes import running_dagster_dev
from order_tracking_devtools.gcs_emulator import GcsEmulator

BUCKET, PREFIX = "order-landing", "incoming"


def main() -> int:
    data = settings.data_dir() / "demo-gcs"
    shutil.rmtree(data, ignore_errors=True)

    emulator = GcsEmulator().start()
    env = {
        "STORAGE_EMULATOR_HOST": emulator.url,
        "ORDER_TRACKING_LANDING_URI": f"gs://{BUCKET}/{PREFIX}",
        "ORDER_TRACKING_LAKEHOUSE_URI": str(data / "lakehouse"),
        "ORDER_TRACKING_SENSOR": "running",
        "ORDER_TRACKING_SENSOR_INTERVAL_SECONDS": "5",
    }
    os.environ["STORAGE_EMULATOR_HOST"] = emulator.url
    bucket = storage.Client(project="demo").create_bucket(BUCKET)
    # Runs attach to the data directory's warm engine; one started here is stopped at the end.
    with engine.running(), running_dagster_dev(
        data / "dagster_home", env, data / "dagster_dev.log", port=3000
    ) as dagster:
        print(f"fake-gcs-server at {emulator.url}; the Dagster UI at http://127.0.0.1:3000", flush=True)
        try:
            DagsterUI("http://127.0.0.1:3000").wait_until_ready(180, lambda: dagster.poll() is None)
            for path in sample_files():
                bucket.blob(f"{PREFIX}/{path.name}").upload_from_filename(str(path))
                print(f"uploaded gs://{BUCKET}/{PREFIX}/{path.name}", flush=True)
                time.sleep(10)
            print(f"Watch the sensor's runs in the Dagster UI; tables land in {data / 'lakehouse'}. Ctrl-C stops.")
            dagster.wait()
        except KeyboardInterrupt:
            pass
        finally:
            emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
