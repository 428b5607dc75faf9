"""Every Delta operation of the project, as small functions of a session and a table's path.

Create a table ahead of its first write; replace or clear one day of a partitioned table; the
sequenced MERGE that upserts a day into order_tracking; compaction (OPTIMIZE); the commit tag
that finds a MERGE's version again; retry on write conflicts. In SQL, like every Delta operation
here: it runs on a classic session (a Databricks step) and over Spark Connect (the local engine)
alike, where Delta's Python DeltaTable API needs a server plugin. What a table is (name, schema,
layout, properties) is defined in catalog.py; what rows go in, in transforms/.

Runs for different days write the same tables concurrently (a backfill plus sensor runs). Delta
resolves most of that itself (appends, and replaceWhere on different partitions, do not conflict)
but two writers creating a table in an empty folder, or a real overlap, raise a concurrent
modification error: those are retried with backoff, everything else is raised as is.
"""

import logging
import operator
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import reduce
from typing import TypeVar

from delta.exceptions import DeltaConcurrentModificationException
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from order_tracking.schema import ORDER_TRACKING_SCHEMA, PARTITION_DATE, TRACKING_NUM
from order_tracking.transforms.sequence import newer_than

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


# --- One day of a table partitioned by _partition_date -----------------------------------------


def replace_partition(frame: DataFrame, uri: str, partition_key: str) -> None:
    """Overwrite exactly one day of the table at `uri` (idempotent reruns; runs for other days
    may write at the same time). The table must exist (catalog's Table.ensure)."""
    retry_on_conflict(
        lambda: frame.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", f"{PARTITION_DATE} = DATE'{partition_key}'")
        .save(uri)
    )


def clear_partition(spark: SparkSession, uri: str, partition_key: str) -> None:
    """Empty one day of the table at `uri` (whole files only: no rewrite)."""
    retry_on_conflict(
        lambda: spark.sql(
            f"DELETE FROM {table_ref(uri)} WHERE {PARTITION_DATE} = :day",
            args={"day": date.fromisoformat(partition_key)},
        )
    )


# --- The sequenced MERGE -------------------------------------------------------------------------

# Writers to order_tracking are serialized, so our commit is the newest or close to it.
HISTORY_SEARCH_DEPTH = 20


@dataclass(frozen=True)
class SourceSummary:
    rows: int
    keys: tuple[str, str] | None  # smallest and largest tracking_num; None without rows


def summarize_source(staged: DataFrame) -> SourceSummary:
    """Row count and key range of the MERGE's source, in one pass, taken before the MERGE."""
    rows, low, high = staged.agg(
        F.count(F.lit(1)), F.min(TRACKING_NUM), F.max(TRACKING_NUM)
    ).first()
    return SourceSummary(rows, None if low is None else (low, high))


def match_condition(keys: tuple[str, str] | None) -> str:
    """Same key, and the target's key within the source's smallest and largest key (the named
    parameters :low_key and :high_key): a target row outside that range cannot match, and the
    range lets Delta skip every file whose tracking_num statistics lie outside it instead of
    reading the whole table."""
    on_key = f"t.{TRACKING_NUM} = s.{TRACKING_NUM}"
    if keys is None:
        return on_key
    return f"{on_key} AND t.{TRACKING_NUM} BETWEEN :low_key AND :high_key"


@dataclass(frozen=True)
class MergeCounts:
    source_rows: int
    inserted: int
    updated: int
    version: int

    @property
    def skipped_as_stale(self) -> int:
        return self.source_rows - self.inserted - self.updated

    def metadata(self) -> dict[str, int]:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "skipped_as_stale": self.skipped_as_stale,
            "source_rows": self.source_rows,
            "delta_version": self.version,
        }


def sequenced_merge(
    spark: SparkSession,
    target_uri: str,
    staged: DataFrame,
    commit_tag: str,
    source: SourceSummary,
) -> MergeCounts:
    """Upsert staged rows (at most one per tracking_num) into the target; never deletes. A target
    row is replaced only by a row that is newer by the sequence (transforms/sequence.py), so the
    final table is the same whatever order days are merged or re-merged in.

    `source`, from `summarize_source`, is taken by the caller before the MERGE starts, so the
    MERGE itself reads its source once.

    The commit carries `commit_tag` (run id and day) as its userMetadata: lineage for whoever reads
    the table history, and how the MERGE's version is found again.
    """
    columns = ORDER_TRACKING_SCHEMA.fieldNames()
    with as_view(staged) as view, commit_tagged(spark, commit_tag):
        statement = (
            f"MERGE INTO {table_ref(target_uri)} t USING {view} s"
            f" ON {match_condition(source.keys)}"
            f" WHEN MATCHED AND ({newer_than('s', 't')}) THEN UPDATE SET "
            + ", ".join(f"t.`{c}` = s.`{c}`" for c in columns)
            + f" WHEN NOT MATCHED THEN INSERT ({', '.join(f'`{c}`' for c in columns)})"
            f" VALUES ({', '.join(f's.`{c}`' for c in columns)})"
        )
        # Keys as parameters, never spliced into the text: a tracking number is arbitrary text.
        args = dict(zip(("low_key", "high_key"), source.keys)) if source.keys else None
        # A conflicting MERGE committed nothing: safe to redo. Its result row holds the counts.
        [counts] = retry_on_conflict(lambda: spark.sql(statement, args=args).collect())
    return MergeCounts(
        source_rows=source.rows,
        inserted=counts["num_inserted_rows"],
        updated=counts["num_updated_rows"],
        version=tagged_version(spark, target_uri, commit_tag, "MERGE"),
    )


def tagged_version(spark: SparkSession, uri: str, tag: str, operation: str) -> int:
    """The version of our `operation` committed under `tag`, among the recent commits; the newest
    version if it wrote none (Delta writes no commit for a MERGE that changes nothing, when every
    source row was stale)."""
    recent = history(spark, uri, HISTORY_SEARCH_DEPTH).select(
        "version", "operation", "userMetadata"
    ).collect()
    ours = [c.version for c in recent if c.userMetadata == tag and c.operation == operation]
    return max(ours) if ours else max(c.version for c in recent)


# --- Compaction ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileStats:
    files: int
    bytes: int


@dataclass(frozen=True)
class Compaction:
    before: FileStats
    after: FileStats
    files_removed: int
    files_added: int
    deletion_vectors_removed: int
    version: int


def file_stats(spark: SparkSession, uri: str) -> FileStats:
    detail = spark.sql(f"DESCRIBE DETAIL {table_ref(uri)}").select("numFiles", "sizeInBytes").first()
    return FileStats(files=detail["numFiles"], bytes=detail["sizeInBytes"])


def compact(spark: SparkSession, uri: str) -> Compaction:
    """OPTIMIZE the table (clustering it, if it is clustered): few files with narrow key ranges,
    and the rows that deletion vectors mark as replaced dropped. Changes no row. Safe to repeat:
    a table already compact gives an OPTIMIZE that rewrites nothing."""
    before = file_stats(spark, uri)
    # A writer that committed in between makes OPTIMIZE conflict; it rewrote nothing, so redo it.
    [result] = retry_on_conflict(lambda: spark.sql(f"OPTIMIZE {table_ref(uri)}").collect())
    metrics = result["metrics"]
    dv_stats = metrics["deletionVectorStats"]
    return Compaction(
        before=before,
        after=file_stats(spark, uri),
        files_removed=metrics["numFilesRemoved"],
        files_added=metrics["numFilesAdded"],
        deletion_vectors_removed=dv_stats["numDeletionVectorsRemoved"] if dv_stats else 0,
        version=latest_version(spark, uri),
    )


# --- Rows of some keys replaced (the status history) ---------------------------------------------


@dataclass(frozen=True)
class KeysReplaced:
    inserted: int
    updated: int
    deleted: int
    version: int

    @property
    def changed(self) -> int:
        return self.inserted + self.updated + self.deleted


def replace_rows_of_keys(
    spark: SparkSession,
    uri: str,
    new_rows: DataFrame,
    keys: tuple[str, str],
    row_id: tuple[str, ...],
    commit_tag: str,
    ignore: tuple[str, ...] = (),
    key_set: DataFrame | None = None,
) -> KeysReplaced:
    """Make the table's rows of the tracking_nums in `new_rows` exactly `new_rows`, in one MERGE.

    `new_rows` holds all the rows of each of its tracking_nums (whose smallest and largest are
    `keys`); a row is identified by `row_id` (which starts with tracking_num). A caller that has
    those tracking_nums more cheaply than `new_rows` gives them passes them as `key_set` (one row
    each, exactly those: an extra key would lose its rows, a missing one keep stale rows). Old
    rows of those keys that `new_rows` no longer has are deleted, changed ones updated (a
    difference in `ignore` columns alone is no change), new ones inserted, and unchanged ones not
    written at all: a rebuild that changes nothing commits nothing. The difference is computed
    first, as the MERGE's source: Delta's MERGE cannot delete "the target rows of these keys that
    the source lacks" (a NOT MATCHED BY SOURCE condition cannot read the source).
    """
    columns = new_rows.columns
    in_range = F.col(TRACKING_NUM).between(*keys)
    if key_set is None:
        key_set = new_rows.select(TRACKING_NUM).distinct()
    old = (
        spark.read.format("delta").load(uri).where(in_range).join(key_set, TRACKING_NUM, "left_semi")
    )
    old = old.select(*[F.col(c).alias(f"o_{c}") for c in columns])
    new = new_rows.withColumn("_new", F.lit(True))
    joined = new.join(old, [new[c] == old[f"o_{c}"] for c in row_id], "full")
    differs = [~F.col(c).eqNullSafe(F.col(f"o_{c}")) for c in columns if c not in row_id + ignore]
    action = (
        F.when(F.col("_new").isNull(), "delete")
        .when(F.col(f"o_{row_id[0]}").isNull(), "insert")
        .when(_any(differs), "update")
    )
    changes = (
        joined.withColumns({c: F.coalesce(F.col(c), F.col(f"o_{c}")) for c in row_id})
        .withColumn("_action", action)
        .where(F.col("_action").isNotNull())
        .drop("_new")
    )
    on = " AND ".join(f"t.`{c}` = s.`{c}`" for c in row_id)
    with as_view(changes) as view, commit_tagged(spark, commit_tag):
        statement = (
            f"MERGE INTO {table_ref(uri)} t USING {view} s"
            f" ON {on} AND t.{TRACKING_NUM} BETWEEN :low_key AND :high_key"
            " WHEN MATCHED AND s._action = 'delete' THEN DELETE"
            " WHEN MATCHED AND s._action = 'update' THEN UPDATE SET "
            + ", ".join(f"t.`{c}` = s.`{c}`" for c in columns)
            + " WHEN NOT MATCHED AND s._action = 'insert' THEN INSERT"
            f" ({', '.join(f'`{c}`' for c in columns)}) VALUES ({', '.join(f's.`{c}`' for c in columns)})"
        )
        args = {"low_key": keys[0], "high_key": keys[1]}
        [counts] = retry_on_conflict(lambda: spark.sql(statement, args=args).collect())
    return KeysReplaced(
        inserted=counts["num_inserted_rows"],
        updated=counts["num_updated_rows"],
        deleted=counts["num_deleted_rows"],
        version=tagged_version(spark, uri, commit_tag, "MERGE"),
    )


def replace_table(
    spark: SparkSession,
    uri: str,
    new_rows: DataFrame,
    row_id: tuple[str, ...],
    commit_tag: str,
    ignore: tuple[str, ...] = (),
) -> None:
    """Make the whole table exactly `new_rows`, in one MERGE commit: rows it lacks deleted,
    changed ones updated (a difference in `ignore` columns alone is no change), new ones inserted,
    unchanged ones left as they are. A MERGE, not an overwrite: a DataFrame overwrite and INSERT
    OVERWRITE both dropped order_tracking's clustering (Delta 4.0), and they rewrite every row."""
    columns = new_rows.columns
    on = " AND ".join(f"t.`{c}` = s.`{c}`" for c in row_id)
    differs = " OR ".join(f"NOT (t.`{c}` <=> s.`{c}`)" for c in columns if c not in row_id + ignore)
    with as_view(new_rows) as view, commit_tagged(spark, commit_tag):
        statement = (
            f"MERGE INTO {table_ref(uri)} t USING {view} s ON {on}"
            f" WHEN MATCHED AND ({differs}) THEN UPDATE SET "
            + ", ".join(f"t.`{c}` = s.`{c}`" for c in columns)
            + f" WHEN NOT MATCHED THEN INSERT ({', '.join(f'`{c}`' for c in columns)})"
            f" VALUES ({', '.join(f's.`{c}`' for c in columns)})"
            " WHEN NOT MATCHED BY SOURCE THEN DELETE"
        )
        retry_on_conflict(lambda: spark.sql(statement).collect())


def _any(conditions: list[Column]) -> Column:
    return reduce(operator.or_, conditions, F.lit(False))


def replace_days(frame: DataFrame, uri: str, column: str, first: str, last: str) -> None:
    """Overwrite the days `first`..`last` of a table partitioned by the date `column`."""
    retry_on_conflict(
        lambda: frame.write.format("delta")
        .mode("overwrite")
        # Not BETWEEN: Delta 4.0 fails to analyze it in a replaceWhere (an internal error).
        .option("replaceWhere", f"`{column}` >= DATE'{first}' AND `{column}` <= DATE'{last}'")
        .save(uri)
    )
