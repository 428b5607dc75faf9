"""Rebuild from the raw zone, for when parsing or the rule changes:

    python -m order_tracking.rebuild 2023-01-01 2023-01-31

1. Every day of the range with recorded raw files is staged again from them (order_events,
   staged_orders and quarantined_orders of the day, as a run stages it; days at once).
2. order_tracking is rewritten from all staged days, the range's and the others': per
   tracking_num the newest staged row, which is what the incremental MERGEs leave (the rule is a
   maximum: the order of the days never mattered). One overwrite, one commit.
3. order_status_history is rewritten from all events, in one commit.

Each table's new content replaces the old in one Delta commit (a MERGE that deletes the rows the
new content lacks and writes only the rows that changed), tagged 'rebuild <run id>
<first>...<last>': until it commits, readers see the old table, whole. A rebuild that changes no
row may commit nothing. Rows whose only change is the run id keep the old one. Killed halfway, a rebuild
leaves restaged days (the same rows a run stages from the same files) and unreferenced files
(VACUUM removes them); run it again. The raw zone and the ledger are only read. The rows keep
their lineage (file, line, landing, day); restaged rows, and rows the rebuild changed, carry
the rebuild's run id.

Run it where no MERGE runs: rebuild_job is in the writers' pool; at the command line, stop the
sensor first. The daily figures are not rewritten: recompute them for the range with order_figures_job.
A day staged but never merged (a failed run) is merged by the rebuild; a run undone with
order_tracking.undo comes back (its staged rows are still there): undo and rebuild are not to be
combined without rerunning the undone day first.
"""

import argparse
import sys
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from pyspark.sql import SparkSession

from order_tracking.catalog import ORDER_EVENTS, ORDER_STATUS_HISTORY, ORDER_TRACKING, RAW_FILE_LEDGER, STAGED_ORDERS
from order_tracking.daily import stage_days
from order_tracking.delta import read_table, replace_table
from order_tracking.faults import crash_point, crash_while_reading
from order_tracking.raw_zone import read_ledgers
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.spark import command_session
from order_tracking.schema import ORDER_TRACKING_SCHEMA, RUN_ID, TRACKING_NUM, VALID_FROM
from order_tracking.transforms.history import status_versions
from order_tracking.transforms.sequence import latest_per_tracking_num


@dataclass(frozen=True)
class RebuildReport:
    days_restaged: list[str]
    rows_staged: int
    rows_quarantined: int
    rows_before: int
    rows_after: int
    history_versions: int

    def metadata(self) -> dict:
        return {
            "days_restaged": ", ".join(self.days_restaged) or "none",
            "rows_staged": self.rows_staged,
            "rows_quarantined": self.rows_quarantined,
            "order_tracking_rows_before": self.rows_before,
            "order_tracking_rows_after": self.rows_after,
            "history_versions": self.history_versions,
        }


def days_between(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    if end < start:
        raise ValueError(f"the range {first}...{last} ends before it starts")
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def rebuild(spark: SparkSession, lakehouse: Lakehouse, first: str, last: str, run_id: str) -> RebuildReport:
    """See the module's docstring."""
    ledgers = read_ledgers(spark, lakehouse.table_uri(RAW_FILE_LEDGER), days_between(first, last))
    days = [day for day, entries in ledgers.items() if entries]
    reports = stage_days(spark, lakehouse, days, run_id) if days else {}
    crash_point("rebuild_after_restage")
    tag = f"rebuild {run_id} {first}...{last}"

    target_uri = ORDER_TRACKING.ensure(spark, lakehouse.table_uri(ORDER_TRACKING))
    rows_before = spark.read.format("delta").load(target_uri).count()
    staged = read_table(spark, lakehouse.table_uri(STAGED_ORDERS))
    newest = latest_per_tracking_num(staged).select(*ORDER_TRACKING_SCHEMA.fieldNames()) if staged is not None else None
    if newest is not None:
        newest = crash_while_reading(newest, "rebuild_during_replace")
        replace_table(spark, target_uri, newest, (TRACKING_NUM,), tag, ignore=(RUN_ID,))

    history_uri = ORDER_STATUS_HISTORY.ensure(spark, lakehouse.table_uri(ORDER_STATUS_HISTORY))
    events = read_table(spark, lakehouse.table_uri(ORDER_EVENTS))
    if events is not None:
        versions = status_versions(events, run_id)
        replace_table(spark, history_uri, versions, (TRACKING_NUM, VALID_FROM), tag, ignore=(RUN_ID,))
    return RebuildReport(
        days_restaged=days,
        rows_staged=sum(r.rows_staged for r in reports.values()),
        rows_quarantined=sum(r.rows_quarantined for r in reports.values()),
        rows_before=rows_before,
        rows_after=spark.read.format("delta").load(target_uri).count(),
        history_versions=spark.read.format("delta").load(history_uri).count(),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m order_tracking.rebuild", description=__doc__.split("\n\n")[0])
    parser.add_argument("first_day")
    parser.add_argument("last_day")
    args = parser.parse_args(argv)
    try:
        days_between(args.first_day, args.last_day)  # a clear error before any Spark
    except ValueError as error:
        parser.error(str(error))
    with command_session() as spark:
        report = rebuild(spark, Lakehouse(), args.first_day, args.last_day, f"cli-{uuid.uuid4().hex}")
    for key, value in report.metadata().items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
