"""Start and stop a real `dagster-daemon run`, or a real `dagster dev` (webserver + daemon), for this
project's workspace (tests, benchmarks)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).parents[1]
LOCAL_INSTANCE = ROOT / "dagster.yaml"
PRODUCTION_INSTANCE = ROOT / "deploy" / "dagster.production.yaml"


def make_pool_rows(home: Path, env: dict[str, str]) -> None:
    """The deployment step of docs/configuration.md for an instance in `home`: each pool's row made
    once, before runs start (runs that create a missing one at the same moment crash on
    PostgreSQL: dagster-io/dagster#33552)."""
    from order_tracking.assets.insights import ORDER_INSIGHTS_WRITER_POOL
    from order_tracking.assets.pipeline import ORDER_TRACKING_WRITER_POOL

    for pool in (ORDER_TRACKING_WRITER_POOL, ORDER_INSIGHTS_WRITER_POOL):
        subprocess.run(
            [str(Path(sys.executable).parent / "dagster"), "instance", "concurrency", "set", pool, "1"],
            env=os.environ | env | {"DAGSTER_HOME": str(home)}, check=True, capture_output=True, cwd=home,
        )  # fmt: skip


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


def stop_process_group(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to the group (not SIGINT: a daemon started without job control ignores it), then
    wait for all of it, not only its leader: a daemon's code server stops once the runs it started
    are reported ended, which needs the instance's database. Left to outlive a test, it can find the
    database gone (a module's PostgreSQL stopped) and then never exits (its cleanup thread dies on
    the error and the server waits on it for ever). What is left after `timeout` is killed."""
    os.killpg(process.pid, signal.SIGTERM)
    if _group_ended(process, timeout):
        return
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def shut_down(process: subprocess.Popen, timeout: float = 60) -> bool:
    """Ask the Dagster process itself to stop, as Ctrl-C would; True if it and everything it
    started (webserver, daemon, code server, runs) exited on their own in time."""
    process.send_signal(signal.SIGTERM)  # Dagster maps SIGTERM to its SIGINT handler
    return _group_ended(process, timeout)


def _group_ended(process: subprocess.Popen, timeout: float) -> bool:
    """True once `process` and every other process of its group have exited, within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None and not _group_alive(process.pid):
            return True
        time.sleep(0.5)
    return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


# A child of a shell without job control (CI, `make … &`) inherits "ignore SIGINT", and Dagster
# maps SIGTERM to the SIGINT handler: both would be ignored and nothing would shut down. The
# default is restored by a fresh interpreter that then execs the command (same pid, so the process
# group stays the command's), not by a preexec_fn: Python run between fork and exec in a parent
# with threads (pytest's gRPC clients) once died with "Fatal Python error: Segmentation fault".
_WITH_DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
)


@contextmanager
def running_daemon(home: Path, env: dict[str, str], log_path: Path, instance: Path = LOCAL_INSTANCE):
    """A daemon with a fresh DAGSTER_HOME holding the shipped dagster.yaml (or `instance`); its
    runs are subprocesses in its own process group, all stopped on exit."""
    with _running(["dagster-daemon", "run"], home, env, log_path, instance) as process:
        yield process


@contextmanager
def running_dagster_dev(home: Path, env: dict[str, str], log_path: Path, port: int, instance: Path = LOCAL_INSTANCE):
    """`dagster dev` (webserver on 127.0.0.1:port, daemon, code server), as `make dev` starts it."""
    command = ["dagster", "dev", "-h", "127.0.0.1", "-p", str(port)]
    with _running(command, home, env, log_path, instance) as process:
        yield process


@contextmanager
def _running(command: list[str], home: Path, env: dict[str, str], log_path: Path, instance: Path):
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(instance, home / "dagster.yaml")
    executable, *args = command
    with log_path.open("w") as log:
        program = str(Path(sys.executable).parent / executable)
        process = subprocess.Popen(
            [sys.executable, "-c", _WITH_DEFAULT_SIGINT, program, *args, "-w", str(ROOT / "workspace.yaml")],
            cwd=ROOT,
            env=os.environ | env | {"DAGSTER_HOME": str(home)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            if process.poll() is None or _group_alive(process.pid):
                stop_process_group(process)
