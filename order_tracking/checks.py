"""The contract of the tables, as asset checks evaluated in the step that writes them (so they
run wherever the step runs, Databricks included)."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
)
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from order_tracking import schema as s

SAMPLE_SIZE = 5

tracking_num_is_unique = AssetCheckSpec(
    "tracking_num_is_unique",
    asset=AssetKey("order_tracking"),
    description="Exactly one row per tracking_num, and none without one.",
    blocking=True,
)
status_is_known = AssetCheckSpec(
    "status_is_known",
    asset=AssetKey("order_tracking"),
    description="Every status is one of the known statuses (configurable).",
)
partition_has_no_quarantined_rows = AssetCheckSpec(
    "partition_has_no_quarantined_rows",
    asset=AssetKey("staged_orders"),
    description="No line of the day's files was quarantined.",
)


def _sample(frame: DataFrame) -> MetadataValue:
    return MetadataValue.json([row.asDict() for row in frame.limit(SAMPLE_SIZE).collect()])


def check_tracking_num_is_unique(table: DataFrame) -> AssetCheckResult:
    stats = table.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count_distinct(s.TRACKING_NUM).alias("distinct"),
        F.count_if(F.col(s.TRACKING_NUM).isNull()).alias("nulls"),
    ).first()
    duplicated = stats["rows"] - stats["nulls"] - stats["distinct"]
    metadata = {"duplicate_rows": duplicated, "null_tracking_nums": stats["nulls"]}
    if duplicated:
        offenders = (
            table.groupBy(s.TRACKING_NUM).count().where("count > 1").orderBy(F.desc("count"))
        )
        metadata["sample"] = _sample(offenders)
    return AssetCheckResult(
        check_name=tracking_num_is_unique.name,
        passed=duplicated == 0 and stats["nulls"] == 0,
        severity=AssetCheckSeverity.ERROR,
        metadata=metadata,
    )


def check_status_is_known(table: DataFrame, known: list[str]) -> AssetCheckResult:
    unknown = table.where(~F.col(s.STATUS).isin(known) | F.col(s.STATUS).isNull())
    by_status = unknown.groupBy(s.STATUS).count().orderBy(F.desc("count"))
    counts = by_status.collect()
    count = sum(row["count"] for row in counts)
    metadata = {"unknown_status_rows": count, "known_statuses": ", ".join(known)}
    if count:
        metadata["sample"] = MetadataValue.json(
            [row.asDict() for row in counts[:SAMPLE_SIZE]]
        )
    return AssetCheckResult(
        check_name=status_is_known.name,
        passed=count == 0,
        severity=AssetCheckSeverity.WARN,
        metadata=metadata,
    )


def check_no_quarantined_rows(quarantined: DataFrame, count: int) -> AssetCheckResult:
    metadata = {"quarantined_rows": count}
    if count:
        metadata["by_reason"] = MetadataValue.json(
            {
                r["reason"]: r["count"]
                for r in quarantined.groupBy("reason").count().orderBy(F.desc("count")).collect()[:20]
            }
        )
        metadata["sample"] = _sample(
            quarantined.select(s.SOURCE_FILE, s.SOURCE_LINE, "raw_text", "reason").orderBy(
                s.SOURCE_FILE, s.SOURCE_LINE
            )
        )
    return AssetCheckResult(
        check_name=partition_has_no_quarantined_rows.name,
        passed=count == 0,
        severity=AssetCheckSeverity.WARN,
        metadata=metadata,
    )
