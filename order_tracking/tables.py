"""Creating and writing Delta tables safely when several runs write at once.

Runs for different days write the same tables concurrently (a backfill plus sensor runs). Delta
resolves most of that itself (appends, and replaceWhere on different partitions, do not conflict)
but two writers creating a table in an empty folder, or a real overlap, raise a concurrent
modification error: those are retried with backoff, everything else is raised as is.
"""

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from delta.exceptions import DeltaConcurrentModificationException
from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql.types import StructType

T = TypeVar("T")
log = logging.getLogger(__name__)

_CONFLICTS = (
    "io.delta.exceptions.Concurrent",
    "io.delta.exceptions.ProtocolChangedException",
    "io.delta.exceptions.MetadataChangedException",
    "DELTA_CONCURRENT",
    "DELTA_PROTOCOL_CHANGED",
    "DELTA_METADATA_CHANGED",
)


# While another writer is creating a table, its folder already holds a _delta_log without a
# first commit: "not empty and not a Delta table" for a moment. Only creation retries on that.
_CREATION_RACE = ("DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION",)


def is_write_conflict(error: BaseException, markers: tuple[str, ...] = _CONFLICTS) -> bool:
    # Depending on the call path, PySpark surfaces Delta's conflicts as delta.exceptions classes
    # or as the raw Py4JJavaError naming the Java class.
    return isinstance(error, DeltaConcurrentModificationException) or any(
        marker in str(error) for marker in markers
    )


def _conflict_name(error: BaseException, markers: tuple[str, ...]) -> str:
    """The line naming Delta's conflict (Py4J puts it below a generic first line)."""
    lines = str(error).splitlines()
    return next((line.strip() for line in lines if any(m in line for m in markers)), lines[0])[:200]


def retry_on_conflict(
    action: Callable[[], T],
    attempts: int = 6,
    first_delay: float = 0.5,
    markers: tuple[str, ...] = _CONFLICTS,
) -> T:
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as error:
            if attempt == attempts or not is_write_conflict(error, markers):
                raise
            # Jitter keeps two retrying writers from colliding again in lockstep.
            delay = first_delay * 2 ** (attempt - 1) * (1 + random.random())
            log.warning(
                "Delta write conflict (attempt %d of %d), retrying in %.1f s: %s",
                attempt, attempts, delay, _conflict_name(error, markers),
            )
            time.sleep(delay)
    raise AssertionError("unreachable")


def ensure_table(
    spark: SparkSession,
    uri: str,
    schema: StructType,
    partitioned_by: str | None = None,
    clustered_by: str | None = None,
    properties: dict[str, str] | None = None,
) -> DeltaTable:
    """Create the table once, ahead of the first write (racing creators retry, then find it)."""

    def create() -> DeltaTable:
        builder = DeltaTable.createIfNotExists(spark).location(uri).addColumns(schema)
        if partitioned_by:
            builder = builder.partitionedBy(partitioned_by)
        if clustered_by:
            builder = builder.clusterBy(clustered_by)
        for key, value in (properties or {}).items():
            builder = builder.property(key, value)
        return builder.execute()

    return retry_on_conflict(create, markers=_CONFLICTS + _CREATION_RACE)
