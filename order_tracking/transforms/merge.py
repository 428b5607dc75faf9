"""The sequenced upsert of one staged partition into order_tracking.

A target row is replaced only by a row that is newer by the sequence
(last_update_timestamp, _landed_at, _source_file, _source_line). Taking a maximum is commutative,
associative and idempotent, so the final table is the same whatever order partitions are merged
or re-merged in.
"""

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from order_tracking import schema as s
from order_tracking.tables import (
    as_view,
    commit_tagged,
    history,
    retry_on_conflict,
    table_ref,
)

# Writers to order_tracking are serialized, so our commit is the newest or close to it.
HISTORY_SEARCH_DEPTH = 20


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
class SourceSummary:
    rows: int
    keys: tuple[str, str] | None  # smallest and largest tracking_num; None without rows


def summarize_source(staged: DataFrame) -> SourceSummary:
    """Row count and key range of the MERGE's source, in one pass, taken before the MERGE."""
    rows, low, high = staged.agg(
        F.count(F.lit(1)), F.min(s.TRACKING_NUM), F.max(s.TRACKING_NUM)
    ).first()
    return SourceSummary(rows, None if low is None else (low, high))


def match_condition(keys: tuple[str, str] | None) -> str:
    """Same key, and the target's key within the source's smallest and largest key (the named
    parameters :low_key and :high_key): a target row outside that range cannot match, and the
    range lets Delta skip every file whose tracking_num statistics lie outside it instead of
    reading the whole table."""
    on_key = f"t.{s.TRACKING_NUM} = s.{s.TRACKING_NUM}"
    if keys is None:
        return on_key
    return f"{on_key} AND t.{s.TRACKING_NUM} BETWEEN :low_key AND :high_key"


@dataclass(frozen=True)
class MergeCounts:
    source_rows: int
    inserted: int
    updated: int
    version: int

    @property
    def skipped_as_stale(self) -> int:
        return self.source_rows - self.inserted - self.updated


def merge_into_order_tracking(
    spark: SparkSession,
    target_uri: str,
    staged: DataFrame,
    commit_tag: str,
    source: SourceSummary,
) -> MergeCounts:
    """Upsert staged rows (at most one per tracking_num) into the target; never deletes.

    `source`, from `summarize_source`, is taken by the caller before the MERGE starts, so the
    MERGE itself reads its source once.

    The commit carries `commit_tag` (run id and day) as its userMetadata: lineage for whoever reads
    the table history, and how the MERGE's version is found again.
    """
    columns = s.ORDER_TRACKING_SCHEMA.fieldNames()
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
    recent = history(spark, target_uri, HISTORY_SEARCH_DEPTH).select(
        "version", "operation", "userMetadata"
    ).collect()
    ours = [c.version for c in recent if c.userMetadata == commit_tag and c.operation == "MERGE"]
    # Delta writes no commit for a MERGE that changes nothing (every source row was stale).
    return MergeCounts(
        source_rows=source.rows,
        inserted=counts["num_inserted_rows"],
        updated=counts["num_updated_rows"],
        version=max(ours) if ours else max(c.version for c in recent),
    )
