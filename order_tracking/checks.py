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
from order_tracking.steps import SAMPLE_SIZE, StagingReport

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


def check_order_tracking(
    table: DataFrame, known_statuses: list[str]
) -> tuple[list[AssetCheckResult], int]:
    """Both order_tracking checks, and the row count, from one pass over the table; samples only
    when a check fails."""
    unknown_status = ~F.col(s.STATUS).isin(known_statuses) | F.col(s.STATUS).isNull()
    stats = table.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count_distinct(s.TRACKING_NUM).alias("distinct"),
        F.count_if(F.col(s.TRACKING_NUM).isNull()).alias("nulls"),
        F.count_if(unknown_status).alias("unknown_status"),
    ).first()

    duplicated = stats["rows"] - stats["nulls"] - stats["distinct"]
    unique_metadata = {"duplicate_rows": duplicated, "null_tracking_nums": stats["nulls"]}
    if duplicated:
        offenders = table.groupBy(s.TRACKING_NUM).count().where("count > 1")
        unique_metadata["sample"] = _sample(offenders.orderBy(F.desc("count")))

    status_metadata = {
        "unknown_status_rows": stats["unknown_status"],
        "known_statuses": ", ".join(known_statuses),
    }
    if stats["unknown_status"]:
        by_status = table.where(unknown_status).groupBy(s.STATUS).count()
        status_metadata["sample"] = _sample(by_status.orderBy(F.desc("count")))

    results = [
        AssetCheckResult(
            check_name=tracking_num_is_unique.name,
            passed=duplicated == 0 and stats["nulls"] == 0,
            severity=AssetCheckSeverity.ERROR,
            metadata=unique_metadata,
        ),
        AssetCheckResult(
            check_name=status_is_known.name,
            passed=stats["unknown_status"] == 0,
            severity=AssetCheckSeverity.WARN,
            metadata=status_metadata,
        ),
    ]
    return results, stats["rows"]


def check_no_quarantined_rows(report: StagingReport) -> AssetCheckResult:
    metadata = {"quarantined_rows": report.rows_quarantined}
    if report.rows_quarantined:
        metadata["by_reason"] = MetadataValue.json(report.quarantine_reasons)
        metadata["sample"] = MetadataValue.json(report.quarantine_sample)
    return AssetCheckResult(
        check_name=partition_has_no_quarantined_rows.name,
        passed=report.rows_quarantined == 0,
        severity=AssetCheckSeverity.WARN,
        metadata=metadata,
    )
