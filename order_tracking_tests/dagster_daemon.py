"""Start and stop a real `dagster-daemon run` for this project's workspace (tests, benchmarks)."""

import os
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).parents[1]


def sensor_env(landing_uri: str, work: Path, emulator_url: str) -> dict[str, str]:
    """Environment for a daemon whose sensor is on and ticks every 2 s, landing on the emulator."""
    return {
        "ORDER_TRACKING_LANDING_URI": landing_uri,
        "ORDER_TRACKING_LAKEHOUSE_URI": str(work / "lakehouse"),
        "ORDER_TRACKING_DATA_DIR": str(work / "data"),
        "ORDER_TRACKING_SENSOR": "running",
        "ORDER_TRACKING_SENSOR_INTERVAL_SECONDS": "2",
        "STORAGE_EMULATOR_HOST": emulator_url,
    }


def stop_process_group(process: subprocess.Popen) -> None:
    # SIGTERM, not SIGINT: a daemon started without job control ignores SIGINT.
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def running_daemon(home: Path, env: dict[str, str], log_path: Path):
    """A daemon with a fresh DAGSTER_HOME holding the shipped dagster.yaml; its runs are
    subprocesses in its own process group, all stopped on exit."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
            cwd=ROOT,
            env=os.environ | env | {"DAGSTER_HOME": str(home)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            stop_process_group(process)
