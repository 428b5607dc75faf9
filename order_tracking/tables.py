"""Creating and writing Delta tables safely when several runs write at once.

Runs for different days write the same tables concurrently (a backfill plus sensor runs). Delta
resolves most of that itself (appends, and replaceWhere on different partitions, do not conflict)
but two writers creating a table in an empty folder, or a real overlap, raise a concurrent
modification error: those are retried with backoff, everything else is raised as is.
"""

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from delta.exceptions import DeltaConcurrentModificationException
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

T = TypeVar("T")
log = logging.getLogger(__name__)

USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"

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
    # Depending on the call path, PySpark surfaces Delta's conflicts as delta.exceptions classes,
    # as the raw Py4JJavaError naming the Java class, or (Spark Connect) as an error whose
    # message starts with Delta's error condition.
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


def table_ref(uri: str) -> str:
    """A Delta table addressed by its path in SQL."""
    return "delta.`" + uri.replace("`", "``") + "`"


def _column_ddl(schema: StructType) -> str:
    return ", ".join(
        f"`{f.name}` {f.dataType.simpleString()}{'' if f.nullable else ' NOT NULL'}"
        for f in schema.fields
    )


def ensure_table(
    spark: SparkSession,
    uri: str,
    schema: StructType,
    partitioned_by: str | None = None,
    clustered_by: str | None = None,
    properties: dict[str, str] | None = None,
) -> str:
    """Create the table once, ahead of the first write (racing creators retry, then find it).
    In SQL, like every Delta operation here: it runs on a classic session and over Spark Connect
    alike (Delta's Python DeltaTable API needs a server plugin over Connect)."""
    statement = f"CREATE TABLE IF NOT EXISTS {table_ref(uri)} ({_column_ddl(schema)}) USING DELTA"
    if partitioned_by:
        statement += f" PARTITIONED BY (`{partitioned_by}`)"
    if clustered_by:
        statement += f" CLUSTER BY (`{clustered_by}`)"
    if properties:
        pairs = ", ".join(f"'{key}' = '{value}'" for key, value in properties.items())
        statement += f" TBLPROPERTIES ({pairs})"
    retry_on_conflict(lambda: spark.sql(statement), markers=_CONFLICTS + _CREATION_RACE)
    return uri


# What reading a table that was never written raises, by error condition.
_NO_TABLE = ("PATH_NOT_FOUND", "DELTA_MISSING_DELTA_TABLE", "DELTA_TABLE_NOT_FOUND")


def read_table(spark: SparkSession, uri: str) -> DataFrame | None:
    """The table, or None when nothing was ever written there."""
    try:
        frame = spark.read.format("delta").load(uri)
        frame.schema  # over Spark Connect a missing table only shows when the plan is analyzed
        return frame
    except AnalysisException as error:
        if error.getCondition() in _NO_TABLE:
            return None
        raise


def history(spark: SparkSession, uri: str, limit: int | None = None) -> DataFrame:
    """The table's commits, newest first (Delta's DESCRIBE HISTORY)."""
    return spark.sql(
        f"DESCRIBE HISTORY {table_ref(uri)}" + (f" LIMIT {int(limit)}" if limit else "")
    )


def latest_version(spark: SparkSession, uri: str) -> int:
    return history(spark, uri, 1).first()["version"]


@contextmanager
def as_view(frame: DataFrame) -> Iterator[str]:
    """`frame` under a unique temporary view name, for the SQL statements that read it."""
    name = f"_source_{uuid.uuid4().hex}"
    frame.createOrReplaceTempView(name)
    try:
        yield name
    finally:
        frame.sparkSession.sql(f"DROP VIEW IF EXISTS {name}")


@contextmanager
def commit_tagged(spark: SparkSession, tag: str) -> Iterator[None]:
    """Commits made inside carry `tag` as their userMetadata (lineage in DESCRIBE HISTORY)."""
    spark.conf.set(USER_METADATA, tag)
    try:
        yield
    finally:
        spark.conf.unset(USER_METADATA)
