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
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from order_tracking import schema
from order_tracking.daily import SAMPLE_SIZE, TOP_REASONS, StagingReport
from order_tracking.transforms.history import with_previous_status

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
    return _json_rows([row.asDict() for row in frame.limit(SAMPLE_SIZE).collect()])


def _json_rows(rows: list[dict]) -> MetadataValue:
    # Dates and timestamps as ISO text: JSON has no type for them.
    return MetadataValue.json(
        [{k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()} for row in rows]
    )


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


# --- order_status_history ------------------------------------------------------------------------

HISTORY = AssetKey("order_status_history")

history_is_contiguous = AssetCheckSpec(
    "history_is_contiguous",
    asset=HISTORY,
    description=(
        "Per tracking_num the run rebuilt, the versions form one chain: each valid_to is the next"
        " version's valid_from, the last one alone is current (valid_to NULL), and two consecutive"
        " versions never have the same status."
    ),
    blocking=True,
)
history_matches_order_tracking = AssetCheckSpec(
    "history_matches_order_tracking",
    asset=HISTORY,
    description=(
        "Each tracking_num's current version has order_tracking's status and"
        " last_update_timestamp, and every order_tracking row has a history."
    ),
)
status_goes_backwards = AssetCheckSpec(
    "status_goes_backwards",
    asset=HISTORY,
    description=(
        "Among the chains the run rebuilt, versions whose status is less far along than the one"
        " before (Delivered → In Transit, Returned → Delivered): counted per transition, with"
        " an example of each, for the operations team; never stops the load."
    ),
)


def check_history_chains(rebuilt: DataFrame) -> tuple[AssetCheckResult, AssetCheckResult]:
    """history_is_contiguous and status_goes_backwards over the chains the run rebuilt (`rebuilt`:
    their versions as written), from one pass: each version compared with its neighbours, counted
    per transition in one small collect. The backward steps' sample is one example per
    transition, from the same collect; broken chains (rare) are counted and sampled apart."""
    by_time = Window.partitionBy(schema.TRACKING_NUM).orderBy(schema.VALID_FROM)
    following = F.lead(schema.VALID_FROM).over(by_time)
    flagged = with_previous_status(rebuilt).select(
        "*",
        (
            ~F.col(schema.VALID_TO).eqNullSafe(following)
            | (F.col(schema.IS_CURRENT) != following.isNull())
            | F.col("from_status").eqNullSafe(F.col(schema.STATUS))
        ).alias("_broken"),
    )
    example = F.struct(schema.TRACKING_NUM, schema.VALID_FROM, "from_status", F.col(schema.STATUS).alias("to_status"))
    rows = (
        flagged.where("_broken OR _backward")
        .groupBy("from_status", schema.STATUS)
        .agg(
            F.count_if("_broken").alias("broken"),
            F.count_if("_backward").alias("backward"),
            F.min(F.when(F.col("_backward"), example)).alias("example"),
        )
        .collect()
    )
    return _contiguous_result(flagged, sum(r["broken"] for r in rows)), _backwards_result(
        [r for r in rows if r["backward"]]
    )


def _contiguous_result(flagged: DataFrame, broken: int) -> AssetCheckResult:
    metadata = {"broken_versions": broken, "broken_keys": 0}
    if broken:
        rows = flagged.where("_broken").select(
            schema.TRACKING_NUM, schema.VALID_FROM, schema.VALID_TO, schema.STATUS, schema.IS_CURRENT,
        )  # fmt: skip
        metadata["broken_keys"] = rows.select(schema.TRACKING_NUM).distinct().count()
        metadata["sample"] = _sample(rows.orderBy(schema.TRACKING_NUM, schema.VALID_FROM))
    return AssetCheckResult(
        asset_key=HISTORY,
        check_name=history_is_contiguous.name,
        passed=broken == 0,
        severity=AssetCheckSeverity.ERROR,
        metadata=metadata,
    )


def _backwards_result(rows: list) -> AssetCheckResult:
    rows = sorted(rows, key=lambda r: (-r["backward"], r["from_status"], r[schema.STATUS]))
    by_transition = {f"{r['from_status']} → {r[schema.STATUS]}": r["backward"] for r in rows}
    metadata = {
        "backward_steps": sum(by_transition.values()),
        "by_transition": MetadataValue.json(by_transition),
    }
    if rows:
        # One example per transition, the most frequent first.
        metadata["sample"] = _json_rows([r["example"].asDict() for r in rows[:SAMPLE_SIZE]])
    return AssetCheckResult(
        asset_key=HISTORY,
        check_name=status_goes_backwards.name,
        passed=not by_transition,
        severity=AssetCheckSeverity.WARN,
        metadata=metadata,
    )


def check_history_matches(history: DataFrame, tracking: DataFrame) -> AssetCheckResult:
    current = history.where(schema.IS_CURRENT).select(
        schema.TRACKING_NUM,
        F.col(schema.STATUS).alias("history_status"),
        F.col(schema.LAST_UPDATE).alias("history_timestamp"),
    )
    target = tracking.select(
        schema.TRACKING_NUM,
        F.col(schema.STATUS).alias("order_tracking_status"),
        F.col(schema.LAST_UPDATE).alias("order_tracking_timestamp"),
    )
    mismatched = current.join(target, schema.TRACKING_NUM, "full").where(
        ~F.col("history_status").eqNullSafe(F.col("order_tracking_status"))
        | ~F.col("history_timestamp").eqNullSafe(F.col("order_tracking_timestamp"))
        | F.col("history_timestamp").isNull()
        | F.col("order_tracking_timestamp").isNull()
    )
    count = mismatched.count()
    metadata = {"mismatched_keys": count}
    if count:
        metadata["sample"] = _sample(mismatched.orderBy(schema.TRACKING_NUM))
    return AssetCheckResult(
        asset_key=HISTORY,
        check_name=history_matches_order_tracking.name,
        passed=count == 0,
        severity=AssetCheckSeverity.ERROR,
        metadata=metadata,
    )
