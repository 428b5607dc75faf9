"""Crash points for the recovery tests: a run must be restartable wherever it dies.

With ORDER_TRACKING_CRASH_AT=<point>, the process running the step is killed with SIGKILL (no
`finally`, no cleanup: like an OOM kill or a lost node) when it reaches that point. Never set in
a deployment; unset, each point costs one environment lookup. With ORDER_TRACKING_CRASH_ONCE=<path>
as well, only the first process to reach the point dies (it creates the file); a retry of the
killed run then goes through.
"""

import os
import signal
from contextlib import suppress
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

VARIABLE = "ORDER_TRACKING_CRASH_AT"
ONCE = "ORDER_TRACKING_CRASH_ONCE"
# The points: after_raw_copy (the day's files are copied into the raw zone, not yet in the ledger,
# still in landing); before_merge (staged_orders is written, the MERGE not started);
# during_merge (the MERGE is reading its source: files may be written, nothing committed).
# The rebuild's: rebuild_after_restage (the range is staged again, no table replaced yet);
# rebuild_during_replace (order_tracking's replacing MERGE is reading its source).


def _armed(point: str) -> bool:
    if os.environ.get(VARIABLE) != point:
        return False
    if marker := os.environ.get(ONCE):
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
    return True


def crash_point(point: str) -> None:
    if _armed(point):
        os.kill(os.getpid(), signal.SIGKILL)


def crash_while_reading(frame: DataFrame, point: str) -> DataFrame:
    """`frame`, killing the driver process as soon as a Spark task reads its first row."""
    if not _armed(point):
        return frame
    driver = os.getpid()
    started = _start_time(driver)

    def kill(_: int) -> bool:  # runs in a Python worker, so it kills the driver by pid
        # Every row calls this. Once the driver is gone (and reaped), its pid may name another
        # process, and failing instead would fail the Spark work the engine completes for its
        # dead client: only the process that started at the driver's start time is killed.
        if _start_time(driver) == started:
            with suppress(ProcessLookupError):
                os.kill(driver, signal.SIGKILL)
        return True

    killer = F.udf(kill, "boolean").asNondeterministic()
    return frame.where(killer(F.lit(1)))


def _start_time(pid: int) -> str | None:
    """When the process `pid` started (clock ticks since boot), or None if there is none."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (FileNotFoundError, ProcessLookupError):
        return None
