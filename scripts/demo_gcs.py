"""`make demo-gcs`: the sensor-driven flow on a laptop. Starts fake-gcs-server on 127.0.0.1, runs
`dagster dev` (webserver + daemon) with the landing zone in an emulated bucket and the sensor on,
uploads the five sample files one by one, and keeps Dagit up until Ctrl-C."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from google.cloud import storage

from order_tracking import settings
from order_tracking.sample_data import sample_files
from order_tracking_tests.dagster_daemon import stop_process_group
from order_tracking_tests.gcs_emulator import GcsEmulator

ROOT = Path(__file__).parents[1]
BUCKET, PREFIX = "order-landing", "incoming"


def main() -> int:
    data = settings.data_dir() / "demo-gcs"
    shutil.rmtree(data, ignore_errors=True)
    (data / "dagster_home").mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", data / "dagster_home" / "dagster.yaml")

    emulator = GcsEmulator().start()
    env = os.environ | {
        "STORAGE_EMULATOR_HOST": emulator.url,
        "DAGSTER_HOME": str(data / "dagster_home"),
        "ORDER_TRACKING_LANDING_URI": f"gs://{BUCKET}/{PREFIX}",
        "ORDER_TRACKING_LAKEHOUSE_URI": str(data / "lakehouse"),
        "ORDER_TRACKING_SENSOR": "running",
        "ORDER_TRACKING_SENSOR_INTERVAL_SECONDS": "5",
    }
    os.environ["STORAGE_EMULATOR_HOST"] = emulator.url
    bucket = storage.Client(project="demo").create_bucket(BUCKET)
    dagster = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p", "3000",
         "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT, env=env, start_new_session=True,
    )
    try:
        print(f"fake-gcs-server at {emulator.url}; Dagit at http://127.0.0.1:3000", flush=True)
        time.sleep(20)
        for path in sample_files():
            bucket.blob(f"{PREFIX}/{path.name}").upload_from_filename(str(path))
            print(f"uploaded gs://{BUCKET}/{PREFIX}/{path.name}", flush=True)
            time.sleep(10)
        print(f"Watch the sensor's runs in Dagit; tables land in {data / 'lakehouse'}. Ctrl-C stops.")
        dagster.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_process_group(dagster)
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
