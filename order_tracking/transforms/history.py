"""From status reports to status versions, and from versions to the daily figures.

A tracking_num's history is a function of the set of its events alone: events in timestamp order,
consecutive events with one status folded into one version. Rebuilding a key's whole chain from
its events, rather than appending to or closing its current version, is what places a late event
where its timestamp puts it (it may split a version or join two) and makes a replay change
nothing: the result does not depend on the order in which files land or days are materialized.

The figures of a day are a function of the history alone (and, for late lines, of the day's
events): any day can be recomputed, or restated, at any time.
"""

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from order_tracking.schema import (
    CLOSED_STATUSES,
    DAY,
    DELAYED,
    DELIVER_DATE,
    DELIVERED,
    EVENT_COUNT,
    HISTORY_SCHEMA,
    IS_CURRENT,
    LAST_UPDATE,
    PARTITION_DATE,
    RECEIVED_DATE,
    RETURNED,
    RUN_ID,
    STATUS,
    STATUS_PROGRESS,
    TRACKING_NUM,
    VALID_FROM,
    VALID_TO,
)
from order_tracking.transforms.sequence import mark_latest_per_tracking_num

# Percentiles are nearest-rank (a value that occurred): exact up to this many deliveries a day,
# within 1/this of the rank beyond.
PERCENTILE_ACCURACY = 10_000


def one_event_per_timestamp(events: DataFrame) -> DataFrame:
    """One row per (tracking_num, last_update_timestamp): the later-landed file, then the later
    line, wins a tie (the same rule as order_tracking's, so the newest event is its row)."""
    marked = mark_latest_per_tracking_num(events, F.lit(True), per=(TRACKING_NUM, LAST_UPDATE))
    return marked.where("_latest").drop("_latest")


def status_versions(events: DataFrame, run_id: str) -> DataFrame:
    """The history rows (HISTORY_SCHEMA) of every tracking_num among `events`, which must hold
    all of each key's events."""
    events = one_event_per_timestamp(events)
    by_time = Window.partitionBy(TRACKING_NUM).orderBy(LAST_UPDATE)
    previous_status = F.lag(STATUS).over(by_time)
    opens = (F.row_number().over(by_time) == 1) | ~previous_status.eqNullSafe(F.col(STATUS))
    numbered = events.withColumn(
        "_version",
        F.sum(opens.cast("int")).over(by_time.rowsBetween(Window.unboundedPreceding, 0)),
    )
    opening_fields = [f.name for f in HISTORY_SCHEMA.fields if f.name in events.columns]
    opening_fields = [c for c in opening_fields if c not in (TRACKING_NUM, LAST_UPDATE, RUN_ID)]
    versions = numbered.groupBy(TRACKING_NUM, "_version").agg(
        F.min(LAST_UPDATE).alias(VALID_FROM),
        F.max(LAST_UPDATE).alias(LAST_UPDATE),
        F.count(F.lit(1)).alias(EVENT_COUNT),
        # Timestamps are unique per key here, so the opening event is one row.
        F.min_by(F.struct(*opening_fields), F.col(LAST_UPDATE)).alias("_opening"),
    )
    next_version = Window.partitionBy(TRACKING_NUM).orderBy(VALID_FROM)
    return versions.select(
        *[
            _history_column(name, next_version, run_id)
            for name in HISTORY_SCHEMA.fieldNames()
        ]
    )


def _history_column(name: str, next_version: Window, run_id: str) -> Column:
    if name == VALID_TO:
        return F.lead(VALID_FROM).over(next_version).alias(VALID_TO)
    if name == IS_CURRENT:
        return F.lead(VALID_FROM).over(next_version).isNull().alias(IS_CURRENT)
    if name == RUN_ID:
        return F.lit(run_id).alias(RUN_ID)
    if name in (TRACKING_NUM, VALID_FROM, LAST_UPDATE, EVENT_COUNT):
        return F.col(name)
    return F.col(f"_opening.{name}").alias(name)


def with_previous_status(history: DataFrame) -> DataFrame:
    """Each version with the status of the version before it (`from_status`, NULL for the first)
    and `_backward`: whether its status is less far along than that one (Delivered -> In
    Transit, Returned -> Delivered and the like)."""
    progress = F.create_map(*[x for s, rank in STATUS_PROGRESS.items() for x in (F.lit(s), F.lit(rank))])
    previous = F.lag(STATUS).over(Window.partitionBy(TRACKING_NUM).orderBy(VALID_FROM))
    return history.select(
        "*",
        previous.alias("from_status"),
        F.coalesce(progress[F.col(STATUS)] < progress[previous], F.lit(False)).alias("_backward"),
    )


# --- The daily figures ---------------------------------------------------------------------------


def _ends_of_days(days: DataFrame) -> DataFrame:
    """days (`day`) with the day's first instant and the next day's (session time zone: the one
    the timestamps were parsed in)."""
    return days.select(
        F.col(DAY),
        F.col(DAY).cast("timestamp").alias("_start"),
        F.date_add(F.col(DAY), 1).cast("timestamp").alias("_end"),
    )


# The counters of day_status_counts that are KPIs as they are, summed over the day's statuses.
SUMMED_COUNTERS = (
    "open_orders", "open_older_than_3_days", "open_older_than_7_days",
    "status_changes", "deliveries", "on_time_deliveries",
)  # fmt: skip


def day_status_counts(history: DataFrame, days: DataFrame) -> DataFrame:
    """Per day of `days` and status, from one pass over `history` (every version):
    - orders: versions current at the end of the day (the status mix); open_orders,
      open_older_than_3_days / _7_days: those of an open status, by the order's age;
    - status_changes: versions that began during the day;
    - deliveries, on_time_deliveries, transit_days_p50 / _p90: first deliveries during the day
      (only in the Delivered rows: a first delivery is a Delivered version).
    Only the (day, status) pairs with a version current at the day's end or begun during it."""
    days = _ends_of_days(days)
    by_time = Window.partitionBy(TRACKING_NUM).orderBy(VALID_FROM).rowsBetween(Window.unboundedPreceding, 0)
    versions = history.select(
        TRACKING_NUM, VALID_FROM, VALID_TO, STATUS, DELIVER_DATE,
        # The order's received date is the one its first status report gave.
        F.first(RECEIVED_DATE).over(by_time).alias("_received"),
        ((F.col(STATUS) == DELIVERED) & (F.count_if(F.col(STATUS) == DELIVERED).over(by_time) == 1)).alias("_first_delivery"),
    )  # fmt: skip
    current = (F.col(VALID_FROM) < F.col("_end")) & (F.col(VALID_TO).isNull() | (F.col(VALID_TO) >= F.col("_end")))
    began = (F.col(VALID_FROM) >= F.col("_start")) & (F.col(VALID_FROM) < F.col("_end"))
    is_open = current & ~F.coalesce(F.col(STATUS).isin(*CLOSED_STATUSES), F.lit(False))
    age = F.datediff(F.col(DAY), F.col("_received"))
    delivered = began & F.col("_first_delivery")
    transit_days = F.when(delivered, F.datediff(F.to_date(VALID_FROM), F.col("_received")))
    return (
        days.join(versions, current | began)
        .groupBy(DAY, STATUS)
        .agg(
            F.count_if(current).alias("orders"),
            F.count_if(is_open).alias("open_orders"),
            F.count_if(is_open & (age > 3)).alias("open_older_than_3_days"),
            F.count_if(is_open & (age > 7)).alias("open_older_than_7_days"),
            F.count_if(began).alias("status_changes"),
            F.count_if(delivered).alias("deliveries"),
            F.count_if(delivered & (F.to_date(VALID_FROM) <= F.col(DELIVER_DATE))).alias("on_time_deliveries"),
            F.percentile_approx(transit_days, 0.5, PERCENTILE_ACCURACY).alias("transit_days_p50"),
            F.percentile_approx(transit_days, 0.9, PERCENTILE_ACCURACY).alias("transit_days_p90"),
        )
    )  # fmt: skip


def status_mix(counts: DataFrame) -> DataFrame:
    """STATUS_DAILY_SCHEMA's rows from day_status_counts: how many orders have each status at the
    end of each day."""
    return counts.where(F.col("orders") > 0).select(DAY, STATUS, "orders")


def late_lines(events: DataFrame, days: DataFrame) -> DataFrame:
    """Per day of `days`, its files' status reports timestamped before the day (`events`: the
    events of those days, one row per tracking_num and timestamp and day already, so a line
    repeated in the day's files counts once)."""
    days = _ends_of_days(days)
    return (
        days.join(
            events.select(PARTITION_DATE, LAST_UPDATE),
            (F.col(PARTITION_DATE) == F.col(DAY)) & (F.col(LAST_UPDATE) < F.col("_start")),
            "left",
        )
        .groupBy(DAY)
        .agg(F.count(LAST_UPDATE).alias("late_lines_received"))
    )


def daily_kpis(counts: DataFrame, late: DataFrame) -> DataFrame:
    """KPIS_SCHEMA's rows (definitions in docs/insights.md) from day_status_counts and late_lines
    (which has every day: a day without versions gets zeros)."""
    summed = lambda column: F.coalesce(F.sum(column), F.lit(0)).cast("bigint")  # noqa: E731
    began_with = lambda status: summed(F.when(F.col(STATUS) == status, F.col("status_changes")))  # noqa: E731
    return (
        late.join(counts, DAY, "left")
        .groupBy(DAY)
        .agg(
            *[summed(F.col(name)).alias(name) for name in SUMMED_COUNTERS],
            summed(F.col("orders")).alias("orders_known"),
            # Only the Delivered row of a day has first deliveries, so it alone has percentiles.
            F.max("transit_days_p50").alias("transit_days_p50"),
            F.max("transit_days_p90").alias("transit_days_p90"),
            began_with(DELAYED).alias("entered_delayed"),
            began_with(RETURNED).alias("returns"),
            F.first("late_lines_received").alias("late_lines_received"),
        )
        .withColumn(
            "on_time_rate",
            F.when(F.col("deliveries") > 0, F.col("on_time_deliveries") / F.col("deliveries")),
        )
    )
