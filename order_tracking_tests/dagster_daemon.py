"""Start and stop a real `dagster-daemon run` for this project's workspace (tests, benchmarks)."""

import os
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).parents[1]


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
            # SIGTERM, not SIGINT: a daemon started without job control ignores SIGINT.
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
