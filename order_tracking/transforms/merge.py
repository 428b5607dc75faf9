"""The sequenced upsert of one staged partition into order_tracking.

A target row is replaced only by a row that is newer by the sequence
(last_update_timestamp, _landed_at, _source_file, _source_line). Taking a maximum is commutative,
associative and idempotent, so the final table is the same whatever order partitions are merged
or re-merged in.
"""

from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from order_tracking import schema as s


def newer_than(new: str, old: str) -> str:
    """SQL predicate: row `new` comes after row `old` in the sequence."""
    predicate = f"{new}.{s.SEQUENCE[-1]} > {old}.{s.SEQUENCE[-1]}"
    for column in reversed(s.SEQUENCE[:-1]):
        predicate = (
            f"{new}.{column} > {old}.{column} "
            f"OR ({new}.{column} = {old}.{column} AND ({predicate}))"
        )
    return predicate


@dataclass(frozen=True)
class MergeCounts:
    source_rows: int
    inserted: int
    updated: int

    @property
    def skipped_as_stale(self) -> int:
        return self.source_rows - self.inserted - self.updated


def create_order_tracking_table(spark: SparkSession, path: str) -> DeltaTable:
    """Clustered by tracking_num so a MERGE touches few files; deletion vectors so an update marks
    rows deleted instead of rewriting whole files."""
    return (
        DeltaTable.createIfNotExists(spark)
        .location(path)
        .addColumns(s.ORDER_TRACKING_SCHEMA)
        .clusterBy(s.TRACKING_NUM)
        .property("delta.enableDeletionVectors", "true")
        .execute()
    )


def merge_into_order_tracking(target: DeltaTable, staged: DataFrame) -> MergeCounts:
    """Upsert staged rows (at most one per tracking_num) into the target; never deletes."""
    source_rows = staged.count()
    columns = [f.name for f in s.ORDER_TRACKING_SCHEMA.fields]
    assignments = {c: f"s.{c}" for c in columns}
    metrics = (
        target.alias("t")
        .merge(staged.alias("s"), f"t.{s.TRACKING_NUM} = s.{s.TRACKING_NUM}")
        .whenMatchedUpdate(condition=newer_than("s", "t"), set=assignments)
        .whenNotMatchedInsert(values=assignments)
        .execute()
        .first()
    )
    return MergeCounts(
        source_rows=source_rows,
        inserted=int(metrics["num_inserted_rows"]),
        updated=int(metrics["num_updated_rows"]),
    )
