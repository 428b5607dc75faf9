"""The contract of the tables, as asset checks evaluated in the step that writes them (so they
run wherever the step runs, Databricks included)."""

from collections import Counter

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
)
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from order_tracking import schema
from order_tracking.daily import SAMPLE_SIZE, TOP_REASONS, StagingReport

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
    description="No line of the files of the run's day(s) was quarantined.",
)


def _sample(frame: DataFrame) -> MetadataValue:
    return MetadataValue.json([row.asDict() for row in frame.limit(SAMPLE_SIZE).collect()])


def check_order_tracking(
    table: DataFrame, known_statuses: list[str]
) -> tuple[list[AssetCheckResult], int]:
    """Both order_tracking checks, and the row count, from one pass over the table; samples only
    when a check fails."""
    unknown_status = ~F.col(schema.STATUS).isin(known_statuses) | F.col(schema.STATUS).isNull()
    stats = table.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count_distinct(schema.TRACKING_NUM).alias("distinct"),
        F.count_if(F.col(schema.TRACKING_NUM).isNull()).alias("nulls"),
        F.count_if(unknown_status).alias("unknown_status"),
    ).first()

    duplicated = stats["rows"] - stats["nulls"] - stats["distinct"]
    unique_metadata = {"duplicate_rows": duplicated, "null_tracking_nums": stats["nulls"]}
    if duplicated:
        offenders = table.groupBy(schema.TRACKING_NUM).count().where("count > 1")
        unique_metadata["sample"] = _sample(offenders.orderBy(F.desc("count")))

    status_metadata = {
        "unknown_status_rows": stats["unknown_status"],
        "known_statuses": ", ".join(known_statuses),
    }
    if stats["unknown_status"]:
        by_status = table.where(unknown_status).groupBy(schema.STATUS).count()
        status_metadata["sample"] = _sample(by_status.orderBy(F.desc("count")))

    results = [
        AssetCheckResult(
            asset_key=tracking_num_is_unique.asset_key,
            check_name=tracking_num_is_unique.name,
            passed=duplicated == 0 and stats["nulls"] == 0,
            severity=AssetCheckSeverity.ERROR,
            metadata=unique_metadata,
        ),
        AssetCheckResult(
            asset_key=status_is_known.asset_key,
            check_name=status_is_known.name,
            passed=stats["unknown_status"] == 0,
            severity=AssetCheckSeverity.WARN,
            metadata=status_metadata,
        ),
    ]
    return results, stats["rows"]


def check_no_quarantined_rows(reports: dict[str, StagingReport]) -> AssetCheckResult:
    """Over the run's days (one, or a backfill's range): the count, then where and why."""
    quarantined = {day: r.rows_quarantined for day, r in reports.items() if r.rows_quarantined}
    metadata = {"quarantined_rows": sum(quarantined.values())}
    if quarantined:
        by_reason: Counter[str] = Counter()
        for report in reports.values():
            by_reason.update(report.quarantine_reasons)
        metadata["by_day"] = MetadataValue.json(quarantined)
        metadata["by_reason"] = MetadataValue.json(dict(by_reason.most_common(TOP_REASONS)))
        sample = [row for day in quarantined for row in reports[day].quarantine_sample]
        metadata["sample"] = MetadataValue.json(sample[:SAMPLE_SIZE])
    return AssetCheckResult(
        asset_key=partition_has_no_quarantined_rows.asset_key,
        check_name=partition_has_no_quarantined_rows.name,
        passed=not quarantined,
        severity=AssetCheckSeverity.WARN,
        metadata=metadata,
    )
