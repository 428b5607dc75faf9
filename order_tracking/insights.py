"""The insight work of a run, after the day's merge: rebuild the status history of every
tracking_num the run's days brought events for, from all of its events; then compute the daily
figures of the run's days from the history. Plain functions of Spark and the lakehouse, like
daily.py; the insight assets wrap them (assets/insights.py).
"""

from dataclasses import dataclass
from datetime import date, datetime

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from order_tracking.catalog import ORDER_EVENTS, ORDER_KPIS_DAILY, ORDER_STATUS_DAILY, ORDER_STATUS_HISTORY
from order_tracking.delta import KeysReplaced, replace_days, replace_rows_of_keys
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.schema import (
    DAY,
    KPI_FIELDS,
    KPIS_SCHEMA,
    LAST_UPDATE,
    PARTITION_DATE,
    RUN_ID,
    STATUS,
    STATUS_DAILY_SCHEMA,
    TRACKING_NUM,
    VALID_FROM,
)
from order_tracking.transforms.history import daily_kpis, day_status_counts, late_lines, status_versions
from order_tracking.transforms.history import status_mix as status_mix_of


def _between(column: str, first: str, last: str):
    return F.col(column).between(F.lit(first).cast("date"), F.lit(last).cast("date"))


# --- The status history --------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryReport:
    keys_rebuilt: int
    events_of_days: int
    # The earliest timestamp among the days' events: no status before it can have changed.
    earliest_event: datetime | None
    replaced: KeysReplaced | None
    # The touched keys' range, for reading their chains back (checks).
    keys: tuple[str, str] | None

    @property
    def changed(self) -> int:
        return self.replaced.changed if self.replaced else 0

    @property
    def figures_changed_from(self) -> str | None:
        """The first day whose figures this rebuild may have changed (None: it changed nothing)."""
        if not self.changed or self.earliest_event is None:
            return None
        return self.earliest_event.date().isoformat()

    def metadata(self) -> dict:
        replaced = self.replaced
        metadata = {
            "keys_rebuilt": self.keys_rebuilt,
            "events_of_days": self.events_of_days,
            "versions_inserted": replaced.inserted if replaced else 0,
            "versions_updated": replaced.updated if replaced else 0,
            "versions_deleted": replaced.deleted if replaced else 0,
        }
        if replaced:
            metadata["delta_version"] = replaced.version
        if self.figures_changed_from:
            metadata["figures_changed_from"] = self.figures_changed_from
        return metadata


def rebuild_history(
    spark: SparkSession, lakehouse: Lakehouse, first: str, last: str, run_id: str
) -> HistoryReport:
    """Rebuild, from all their events, the history of every tracking_num with an event in the
    days `first`..`last`; one MERGE that writes only the versions that changed."""
    events = spark.read.format("delta").load(
        ORDER_EVENTS.ensure(spark, lakehouse.table_uri(ORDER_EVENTS))
    )
    history_uri = ORDER_STATUS_HISTORY.ensure(spark, lakehouse.table_uri(ORDER_STATUS_HISTORY))
    of_days = events.where(_between(PARTITION_DATE, first, last))
    summary = of_days.agg(
        F.count(F.lit(1)).alias("events"),
        F.count_distinct(TRACKING_NUM).alias("keys"),
        F.min(TRACKING_NUM).alias("low"),
        F.max(TRACKING_NUM).alias("high"),
        F.min(LAST_UPDATE).alias("earliest"),
    ).first()
    if not summary["keys"]:
        return HistoryReport(0, 0, None, None, None)
    keys = (summary["low"], summary["high"])
    touched = of_days.select(TRACKING_NUM).distinct()
    # Every event of the touched keys, from every day: a chain is rebuilt whole.
    key_events = events.where(F.col(TRACKING_NUM).between(*keys)).join(touched, TRACKING_NUM, "left_semi")
    replaced = replace_rows_of_keys(
        spark,
        history_uri,
        status_versions(key_events, run_id),
        keys,
        row_id=(TRACKING_NUM, VALID_FROM),
        commit_tag=f"{run_id} {first}...{last}",
        ignore=(RUN_ID,),
        # The keys of the rebuilt rows are the touched ones (each has an event, so a version):
        # taken from the events, the source does not compute the versions twice to find them.
        key_set=touched,
    )
    return HistoryReport(summary["keys"], summary["events"], summary["earliest"], replaced, keys)


def history_of_days_keys(spark: SparkSession, lakehouse: Lakehouse, first: str, last: str) -> DataFrame:
    """The current history of the tracking_nums with an event in the days `first`..`last`."""
    events = spark.read.format("delta").load(lakehouse.table_uri(ORDER_EVENTS))
    touched = events.where(_between(PARTITION_DATE, first, last)).select(TRACKING_NUM).distinct()
    history = spark.read.format("delta").load(lakehouse.table_uri(ORDER_STATUS_HISTORY))
    return history.join(touched, TRACKING_NUM, "left_semi")


# --- The daily figures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DayFigures:
    day: str
    status_mix: dict[str | None, int]
    kpis: dict[str, int | float | None]

    def status_metadata(self) -> dict:
        statuses = sorted(self.status_mix, key=lambda s: (s is None, s or ""))
        table = MetadataValue.table(
            records=[TableRecord({"status": s or "(none)", "orders": self.status_mix[s]}) for s in statuses],
            schema=TableSchema(columns=[TableColumn("status", "string"), TableColumn("orders", "bigint")]),
        )
        return {
            "dagster/row_count": len(self.status_mix),
            "orders": sum(self.status_mix.values()),
            # One numeric entry per status: the UI plots each across the days.
            **{f"orders_{(s or 'none').lower().replace(' ', '_')}": n for s, n in self.status_mix.items()},
            "status_mix": table,
        }

    def kpi_metadata(self) -> dict:
        # Numeric entries only (the UI plots them across days); a rate without deliveries is left
        # out rather than shown as 0.
        metadata = {"dagster/row_count": 1}
        for name, value in self.kpis.items():
            if value is None:
                continue
            metadata[name] = MetadataValue.float(value) if isinstance(value, float) else MetadataValue.int(value)
        return metadata


def compute_figures(
    spark: SparkSession,
    lakehouse: Lakehouse,
    first: str,
    last: str,
    status_mix: bool = True,
    kpis: bool = True,
) -> dict[str, DayFigures]:
    """Recompute the days `first`..`last` of order_status_daily and of order_kpis_daily (those
    asked for) from the history, and the days' events for the late lines; returns each day's
    figures (both, whichever were written)."""
    history = spark.read.format("delta").load(
        ORDER_STATUS_HISTORY.ensure(spark, lakehouse.table_uri(ORDER_STATUS_HISTORY))
    )
    events = spark.read.format("delta").load(
        ORDER_EVENTS.ensure(spark, lakehouse.table_uri(ORDER_EVENTS))
    ).where(_between(PARTITION_DATE, first, last))
    days = spark.sql(
        f"SELECT explode(sequence(DATE'{date.fromisoformat(first)}', DATE'{date.fromisoformat(last)}'))"
        f" AS {DAY}"
    )
    # One pass over the history gives both tables' counters per day and status (days x statuses:
    # small), cached so the two results are sums of them, not two more passes; both collected
    # once and written from the driver. (Not localCheckpoint: over Spark Connect 4.0 a frame
    # derived from a checkpoint lost it on the server when garbage-collected.)
    counts = day_status_counts(history, days).cache()
    try:
        mix_rows = status_mix_of(counts).collect()
        kpi_rows = daily_kpis(counts, late_lines(events, days)).select(*KPIS_SCHEMA.fieldNames()).collect()
    finally:
        counts.unpersist()
    if status_mix:
        frame = spark.createDataFrame([(r[DAY], r[STATUS], r["orders"]) for r in mix_rows], STATUS_DAILY_SCHEMA)
        uri = ORDER_STATUS_DAILY.ensure(spark, lakehouse.table_uri(ORDER_STATUS_DAILY))
        replace_days(frame, uri, DAY, first, last)
    if kpis:
        frame = spark.createDataFrame([tuple(r) for r in kpi_rows], KPIS_SCHEMA)
        replace_days(frame, ORDER_KPIS_DAILY.ensure(spark, lakehouse.table_uri(ORDER_KPIS_DAILY)), DAY, first, last)

    figures = {}
    for row in sorted(kpi_rows, key=lambda r: r[DAY]):
        day = row[DAY].isoformat()
        mix = {r[STATUS]: r["orders"] for r in mix_rows if r[DAY] == row[DAY]}
        figures[day] = DayFigures(day, mix, {f.name: row[f.name] for f in KPI_FIELDS})
    return figures
