"""Undo a bad day: restore order_tracking to the version before a named run's MERGE.

    python -m order_tracking.undo <run id> [--also-later-merges]

The run's MERGEs are found by the commit tag every MERGE carries ('<run id> <day>'; a range run
has one per day). The table is restored (Delta RESTORE, one commit tagged 'undo <run id> by
<who>') to the version just before the first of them. MERGEs of other runs committed after it
would be undone too: the undo refuses, naming them, unless told to undo them as well.

What it leaves: the raw files and the ledger (so the day can be run again once its file or the
parser is fixed), and staged_orders, order_events and the status history, which the day's next
run rewrites. Each undo is a row of order_tracking_undo_log, and the run's metadata when it runs
as undo_run_job.
"""

import argparse
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone

from pyspark.sql import SparkSession

from order_tracking.catalog import ORDER_TRACKING, ORDER_TRACKING_UNDO_LOG
from order_tracking.delta import commit_tagged, history, read_table, retry_on_conflict, table_ref
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.spark import command_session

UNDO = "undo"


@dataclass(frozen=True)
class Commit:
    version: int
    timestamp: datetime
    operation: str
    tag: str | None  # the commit's userMetadata

    @property
    def run_and_day(self) -> tuple[str, str] | None:
        """A MERGE's (run id, day), from its tag."""
        if self.operation != "MERGE" or not self.tag or " " not in self.tag:
            return None
        run_id, day = self.tag.rsplit(" ", 1)
        return run_id, day

    def describe(self) -> str:
        run_id, day = self.run_and_day or (self.tag, "?")
        return f"run {run_id} (day {day}) at version {self.version}"


class UndoRefused(RuntimeError):
    """The undo was not done; the message says why and what to do."""


@dataclass(frozen=True)
class UndoPlan:
    run_id: str
    merges: list[Commit]  # the run's own MERGEs, one per day
    later: list[Commit]  # other runs' MERGEs after the first of them: undone as well
    restore_to: int

    @property
    def days(self) -> list[str]:
        return sorted(c.run_and_day[1] for c in self.merges)


def plan_undo(commits: list[Commit], run_id: str) -> UndoPlan:
    """Which version to restore and what that undoes (pure: from the table's history)."""
    undone = {c.tag.split(" ")[1] for c in commits if c.operation == "RESTORE" and (c.tag or "").startswith(f"{UNDO} ")}
    if run_id in undone:
        raise UndoRefused(f"run {run_id} was undone already (order_tracking_undo_log says when)")
    own = sorted((c for c in commits if c.run_and_day and c.run_and_day[0] == run_id), key=lambda c: c.version)
    if not own:
        raise UndoRefused(
            f"no MERGE of run {run_id} in order_tracking's history: give the id of a run that merged"
            " a day (the run's page in the Dagster UI; or its history is older than the table keeps)"
        )
    first = own[0].version
    later = sorted(
        (
            c
            for c in commits
            if c.version > first and c.run_and_day and c.run_and_day[0] != run_id and c.run_and_day[0] not in undone
        ),
        key=lambda c: c.version,
    )
    return UndoPlan(run_id, own, later, first - 1)


@dataclass(frozen=True)
class UndoReport:
    plan: UndoPlan
    restore_version: int
    rows_before: int
    rows_after: int

    def metadata(self) -> dict:
        return {
            "undone_run_id": self.plan.run_id,
            "days": ", ".join(self.plan.days),
            "restored_to_version": self.plan.restore_to,
            "restore_version": self.restore_version,
            "later_merges_undone": "; ".join(c.describe() for c in self.plan.later) or "none",
            "rows_before": self.rows_before,
            "rows_after": self.rows_after,
        }


def read_commits(spark: SparkSession, uri: str) -> list[Commit]:
    rows = history(spark, uri).select("version", "timestamp", "operation", "userMetadata").collect()
    return [Commit(r.version, r.timestamp, r.operation, r.userMetadata) for r in rows]


def undo_run(
    spark: SparkSession, lakehouse: Lakehouse, run_id: str, by: str, also_later_merges: bool = False
) -> UndoReport:
    """Restore order_tracking to before `run_id`'s first MERGE and log it (see the module's
    docstring). `by` names who undoes it (the undo's run id, or the user at the command line).
    Run it in the writers' pool (undo_run_job is): a MERGE committed between the plan and the
    RESTORE would be undone unannounced."""
    uri = lakehouse.table_uri(ORDER_TRACKING)
    if read_table(spark, uri) is None:
        raise UndoRefused("order_tracking does not exist yet: there is nothing to undo")
    plan = plan_undo(read_commits(spark, uri), run_id)
    if plan.later and not also_later_merges:
        raise UndoRefused(
            f"undoing run {run_id} would also undo {len(plan.later)} later MERGE(s): "
            + "; ".join(c.describe() for c in plan.later)
            + ". Undo them too with --also-later-merges (undo_run_job: also_later_merges: true), then run their days again."
        )
    rows_before = spark.read.format("delta").load(uri).count()
    with commit_tagged(spark, f"{UNDO} {run_id} by {by}"):
        retry_on_conflict(
            lambda: spark.sql(f"RESTORE TABLE {table_ref(uri)} TO VERSION AS OF {plan.restore_to}").collect()
        )
    restore_version = history(spark, uri, 1).first()["version"]
    report = UndoReport(plan, restore_version, rows_before, spark.read.format("delta").load(uri).count())
    _log(spark, lakehouse, report, by)
    return report


def _log(spark: SparkSession, lakehouse: Lakehouse, report: UndoReport, by: str) -> None:
    uri = ORDER_TRACKING_UNDO_LOG.ensure(spark, lakehouse.table_uri(ORDER_TRACKING_UNDO_LOG))
    m = report.metadata()
    row = (
        m["undone_run_id"],
        m["days"],
        [c.version for c in report.plan.merges],
        [c.describe() for c in report.plan.later],
        m["restored_to_version"],
        m["restore_version"],
        m["rows_before"],
        m["rows_after"],
        datetime.now(timezone.utc),
        by,
    )
    spark.createDataFrame([row], ORDER_TRACKING_UNDO_LOG.schema).write.format("delta").mode("append").save(uri)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m order_tracking.undo", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_id")
    parser.add_argument("--also-later-merges", action="store_true", help="undo the MERGEs of later runs too")
    args = parser.parse_args(argv)
    by = f"cli:{os.environ.get('USER', 'unknown')}"
    try:
        with command_session() as spark:
            report = undo_run(spark, Lakehouse(), args.run_id, by, args.also_later_merges)
    except UndoRefused as refused:
        print(f"refused: {refused}", file=sys.stderr)
        return 2
    for key, value in report.metadata().items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
