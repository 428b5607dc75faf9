"""Keeping order_tracking's layout fit for the daily MERGE.

Every MERGE adds a few files holding the day's rows, spread over the whole range of keys in
flight, and marks the replaced rows of older files with deletion vectors. Day after day the
table collects small files whose tracking_num ranges overlap, so the key-range bound in the MERGE
condition skips less and less and every MERGE reads more. OPTIMIZE on a table clustered by
tracking_num rewrites those files into few files with narrow key ranges and drops the rows that
deletion vectors mark as replaced. It changes no row: the data, and every reader's result, stay
the same.
"""

from dataclasses import dataclass

from pyspark.sql import SparkSession

from order_tracking.tables import latest_version, retry_on_conflict, table_ref


@dataclass(frozen=True)
class Layout:
    files: int
    bytes: int


@dataclass(frozen=True)
class Compaction:
    before: Layout
    after: Layout
    files_removed: int
    files_added: int
    deletion_vectors_removed: int
    version: int


def layout(spark: SparkSession, uri: str) -> Layout:
    detail = spark.sql(f"DESCRIBE DETAIL {table_ref(uri)}").select("numFiles", "sizeInBytes").first()
    return Layout(files=detail["numFiles"], bytes=detail["sizeInBytes"])


def compact(spark: SparkSession, uri: str) -> Compaction:
    """OPTIMIZE the table (clustering it, if it is clustered). Safe to repeat: a table already
    compact gives an OPTIMIZE that rewrites nothing."""
    before = layout(spark, uri)
    # A writer that committed in between makes OPTIMIZE conflict; it rewrote nothing, so redo it.
    [result] = retry_on_conflict(lambda: spark.sql(f"OPTIMIZE {table_ref(uri)}").collect())
    metrics = result["metrics"]
    dv_stats = metrics["deletionVectorStats"]
    return Compaction(
        before=before,
        after=layout(spark, uri),
        files_removed=metrics["numFilesRemoved"],
        files_added=metrics["numFilesAdded"],
        deletion_vectors_removed=dv_stats["numDeletionVectorsRemoved"] if dv_stats else 0,
        version=latest_version(spark, uri),
    )
