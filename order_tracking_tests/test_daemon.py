"""Sensor-driven automation for real: the Dagster daemon, its sensor and queued runs, against
fake-gcs-server. Three sample files are uploaded one by one; the table must end exactly right and
the landing prefix empty. Three, not five: each run is its own process with its own cold Spark
JVM (~85 s), and three days already hold duplicates, late rows and updates."""

import time

import pytest

from order_tracking.sample_data import sample_files
from order_tracking_devtools.dagster_processes import running_daemon, sensor_env
from order_tracking_tests.helpers import business_rows, sample_days_oracle

PREFIX = "incoming"
DAYS = 3
DEADLINE_SECONDS = 600


@pytest.fixture
def daemon(tmp_path, gcs_emulator, bucket):
    log = tmp_path / "daemon.log"
    env = sensor_env(f"gs://{bucket.name}/{PREFIX}", tmp_path, gcs_emulator.url)
    with running_daemon(tmp_path / "dagster_home", env, log):
        yield tmp_path / "lakehouse", log


def test_uploaded_files_flow_to_the_table_through_the_daemon(spark, bucket, daemon):
    lakehouse, log = daemon
    expected = sample_days_oracle(DAYS)
    for path in sample_files()[:DAYS]:
        bucket.blob(f"{PREFIX}/{path.name}").upload_from_filename(str(path))
        time.sleep(1)

    deadline, rows, waiting = time.monotonic() + DEADLINE_SECONDS, None, None
    while time.monotonic() < deadline:
        waiting = [b.name for b in bucket.list_blobs(prefix=PREFIX)]
        if not waiting and (lakehouse / "order_tracking" / "_delta_log").is_dir():
            rows = business_rows(spark.read.format("delta").load(str(lakehouse / "order_tracking")))
            if rows == expected:
                break
        time.sleep(3)
    assert waiting == [], f"still in landing: {waiting}\n{log.read_text()[-3000:]}"
    assert rows == expected, log.read_text()[-3000:]
