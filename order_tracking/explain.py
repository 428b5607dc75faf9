"""Explain an order: every line ever received for a tracking number and what became of it, the
MERGE that wrote its current row, and its status history.

    python -m order_tracking.explain TRK1017

prints it as Markdown; explain_order_job puts the same Markdown on its run, for the Dagster UI.

It reads only what is stored, and never every raw file: the events (every valid line kept, one
per tracking_num, timestamp and day) and the quarantine name the days the number was seen on;
only those days' raw files are read again, and of them only the lines that hold the number, so
the lines no table keeps (a tie lost to a line with the same timestamp, a duplicate) are found
too. The current row is read by key from the clustered order_tracking; the MERGE that wrote it
is found in Delta's history by its commit tag ('<run id> <day>').

What happened to each line (judge_lines; pure, so each case is tested without Spark):
- won: it is the current row;
- lost to a newer line (which): it was the newest when its day was merged, a newer one came later;
- stale on arrival (and which line was newer): when its day was merged, the table already held a
  newer line of the order;
- lost a tie (to which line): another line of the same day has the same timestamp and comes later
  in the sequence (later-landed file, then later line); a duplicate when the two lines are equal;
- quarantined, with the reason;
- staged, not merged yet: its day's run staged it but has not merged it (a failed or running run).
"""

import argparse
import re
import sys
from dataclasses import dataclass, replace
from datetime import date, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from order_tracking import schema
from order_tracking.catalog import (
    ORDER_EVENTS,
    ORDER_STATUS_HISTORY,
    ORDER_TRACKING,
    QUARANTINED_ORDERS,
    RAW_FILE_LEDGER,
)
from order_tracking.delta import history, read_table
from order_tracking.raw_zone import read_ledgers
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.spark import command_session
from order_tracking.transforms.parse import RawFile, classify_lines, file_headers, read_records

# How many of the table's nearest numbers an unknown number is shown with.
CLOSEST = 5


@dataclass(frozen=True)
class Line:
    """One line that holds the tracking number, as its raw file has it."""

    day: date  # the file's day
    file_name: str
    version: int
    raw_path: str
    line: int
    landed_at: datetime
    raw_text: str
    status: str | None
    last_update: datetime | None
    reason: str | None  # why it was quarantined, or None for a valid line
    recorded_by: str | None = None  # the run that moved its file into the raw zone
    recorded_at: datetime | None = None
    outcome: str = ""

    @property
    def sequence(self) -> tuple:
        return (self.last_update, self.landed_at, self.raw_path, self.line)

    @property
    def name(self) -> str:
        version = f" (version {self.version})" if self.version > 1 else ""
        return f"{self.file_name}{version} line {self.line}"


@dataclass(frozen=True)
class Merge:
    """A MERGE commit of order_tracking, found by its tag '<run id> <day>'."""

    version: int
    timestamp: datetime
    run_id: str
    day: str


def first_merge(line: Line, merges: list[Merge]) -> Merge | None:
    """The MERGE that first took the line in: its day's MERGE by the run that moved its file in
    (the same step), else the day's first MERGE after the file was recorded (a run that only
    landed it)."""
    of_day = sorted((m for m in merges if m.day == line.day.isoformat()), key=lambda m: m.version)
    by_recorder = [m for m in of_day if m.run_id == line.recorded_by]
    if by_recorder:
        return by_recorder[0]
    if line.recorded_at is None:
        return None
    recorded = line.recorded_at.replace(tzinfo=None)
    return next((m for m in of_day if m.timestamp.replace(tzinfo=None) >= recorded), None)


@dataclass(frozen=True)
class Explanation:
    tracking_num: str
    lines: list[Line]
    current: dict | None  # order_tracking's row
    current_merge: tuple[str, str, Merge | None] | None  # run id, day, its commit
    history: list[dict]
    closest: list[str]

    def to_markdown(self) -> str:
        return render(self)


def judge_lines(
    lines: list[Line], kept: set[tuple[str, int]], current: tuple[str, int] | None, merges: list[Merge]
) -> list[Line]:
    """Each line with its outcome. `kept` are the (raw path, line) the events table keeps,
    `current` order_tracking's row's, `merges` the table's tagged MERGE commits."""
    by_place = {(x.raw_path, x.line): x for x in lines}
    kept_lines = [by_place[k] for k in kept if k in by_place]
    # Each line's first MERGE, looked up once (the judge asks for them again and again).
    first_merges = {(x.raw_path, x.line): first_merge(x, merges) for x in kept_lines}

    def merged(line: Line) -> Merge | None:
        return first_merges.get((line.raw_path, line.line))

    judged = []
    for line in lines:
        if line.reason is not None:
            outcome = f"quarantined: {line.reason}"
        elif (line.raw_path, line.line) in kept:
            outcome = _judge_event(line, kept_lines, current, merged)
        else:
            winner = next(
                (k for k in kept_lines if k.day == line.day and k.last_update == line.last_update), None
            )
            if winner is None:  # the events table lacks its day's winner: restaged since?
                outcome = "not kept: its day's events do not hold this timestamp (restage the day)"
            elif winner.raw_text.strip() == line.raw_text.strip():
                outcome = f"duplicate of {winner.name}"
            else:
                outcome = _lost_to(line, winner)
        judged.append(replace(line, outcome=outcome))
    return judged


def _judge_event(line: Line, kept: list[Line], current: tuple[str, int] | None, merged) -> str:
    if current == (line.raw_path, line.line):
        return "won: the current row"
    newer = [other for other in kept if other.sequence > line.sequence]
    newest = max(newer, key=lambda o: o.sequence) if newer else None
    this_merge = merged(line)
    if this_merge is None:  # its day's run staged it; its MERGE is not (or no longer) in history
        return _lost_to(line, newest) if newest and current is not None else "staged, not merged yet"
    earlier = [o for o in newer if merged(o) is not None and merged(o).version < this_merge.version]
    if earlier:
        return "stale on arrival: " + _lost_to(line, max(earlier, key=lambda o: o.sequence))
    same = [o for o in newer if merged(o) is not None and merged(o).version == this_merge.version]
    if same:  # one MERGE per day: a newer line of its own day (or of its run's range) won
        return _lost_to(line, max(same, key=lambda o: o.sequence))
    later = [o for o in newer if merged(o) is not None]
    if later:
        first = min(later, key=lambda o: (merged(o).version, o.sequence))
        return f"won at version {this_merge.version}, then {_lost_to(line, first)}"
    return _lost_to(line, newest) if newest else "won"


def _lost_to(line: Line, other: Line) -> str:
    """Why `other` comes after `line` in the sequence, naming it."""
    if other.last_update != line.last_update:
        return f"lost to a newer line: {other.name} ({other.status}, {other.last_update})"
    if other.landed_at != line.landed_at:
        why = "its file landed later"
    elif other.raw_path != line.raw_path:
        why = "same landing time, its file name sorts later"
    else:
        why = "a later line of the same file"
    return f"lost a tie to {other.name} ({other.status}): same timestamp, {why}"


def holds_number(text: str, tracking_num: str) -> bool:
    """`text` holds the number as a whole field, not as part of a longer one (TRK10 in TRK100)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(tracking_num)}(?![A-Za-z0-9_])", text) is not None


def explain(spark: SparkSession, lakehouse: Lakehouse, tracking_num: str) -> Explanation:
    """Everything stored about one tracking number (see the module's docstring)."""
    key = F.col(schema.TRACKING_NUM) == F.lit(tracking_num)
    current = _rows(spark, lakehouse.table_uri(ORDER_TRACKING), key)
    event_rows = _rows(
        spark,
        lakehouse.table_uri(ORDER_EVENTS),
        key,
        schema.PARTITION_DATE,
        schema.SOURCE_FILE,
        schema.SOURCE_LINE,
    )
    quarantine_days = _rows(
        spark,
        lakehouse.table_uri(QUARANTINED_ORDERS),
        F.col("raw_text").contains(tracking_num),
        schema.PARTITION_DATE,
    )
    days = sorted({r[schema.PARTITION_DATE].isoformat() for r in event_rows + quarantine_days})
    lines = _raw_lines(spark, lakehouse, tracking_num, days)
    kept = {(r[schema.SOURCE_FILE], r[schema.SOURCE_LINE]) for r in event_rows}
    row = current[0] if current else None
    merges = _merges(spark, lakehouse.table_uri(ORDER_TRACKING))
    judged = judge_lines(lines, kept, (row[schema.SOURCE_FILE], row[schema.SOURCE_LINE]) if row else None, merges)
    current_merge = None
    if row is not None:
        # The row carries the run that staged it; that run's MERGE of the row's day wrote it.
        run_id, day = row[schema.RUN_ID], row[schema.PARTITION_DATE].isoformat()
        writer = [m for m in merges if (m.run_id, m.day) == (run_id, day)]
        current_merge = (run_id, day, min(writer, key=lambda m: m.version) if writer else None)
    history_rows = sorted(
        _rows(spark, lakehouse.table_uri(ORDER_STATUS_HISTORY), key), key=lambda r: r[schema.VALID_FROM]
    )
    closest = [] if row is not None or judged else _closest(spark, lakehouse, tracking_num)
    return Explanation(
        tracking_num,
        judged,
        row.asDict() if row is not None else None,
        current_merge,
        [r.asDict() for r in history_rows],
        closest,
    )


def _rows(spark: SparkSession, uri: str, where, *columns: str) -> list:
    """The table's rows where `where` holds (only `columns`, distinct, when given); none if the
    table does not exist yet."""
    table = read_table(spark, uri)
    if table is None:
        return []
    rows = table.where(where)
    return (rows.select(*columns).distinct() if columns else rows).collect()


def _raw_lines(spark: SparkSession, lakehouse: Lakehouse, tracking_num: str, days: list[str]) -> list[Line]:
    """The lines of the days' raw files that hold the number, parsed as staging parses them."""
    entries = [e for entries in read_ledgers(spark, lakehouse.table_uri(RAW_FILE_LEDGER), days).values() for e in entries]
    if not entries:
        return []
    files = [RawFile(lakehouse.uri_of(e.raw_path), e.raw_path, e.landed_at) for e in entries]
    headers = file_headers(spark, files)
    # Only the records that hold the number's text are classified: the files are read, but the
    # parse of every other line is skipped.
    records = read_records(spark, files, headers).where(F.col("value").contains(tracking_num))
    found = classify_lines(spark, records, headers, days[0]).where(~F.col("_blank")).collect()
    by_path = {e.raw_path: e for e in entries}
    lines = []
    for r in found:
        valid = r["reason"] is None
        if valid and r[schema.TRACKING_NUM] != tracking_num:
            continue  # a valid line of another order that merely mentions the number
        if not valid and not holds_number(r["raw_text"], tracking_num):
            continue
        entry = by_path[r[schema.SOURCE_FILE]]
        lines.append(
            Line(
                day=entry.partition_date,
                file_name=entry.file_name,
                version=entry.version,
                raw_path=entry.raw_path,
                line=r[schema.SOURCE_LINE],
                landed_at=entry.landed_at,
                raw_text=r["raw_text"],
                status=r[schema.STATUS],
                last_update=r[schema.LAST_UPDATE],
                reason=r["reason"],
                recorded_by=entry.run_id,
                recorded_at=entry.recorded_at,
            )
        )
    return sorted(lines, key=lambda x: (x.landed_at, x.raw_path, x.line))


def _merges(spark: SparkSession, uri: str) -> list[Merge]:
    """The table's MERGE commits still in its history, each with its tag's run id and day."""
    if read_table(spark, uri) is None:
        return []
    commits = (
        history(spark, uri)
        .where((F.col("operation") == "MERGE") & F.col("userMetadata").rlike(r" \d{4}-\d{2}-\d{2}$"))
        .select("version", "timestamp", "userMetadata")
        .collect()
    )
    return [Merge(c.version, c.timestamp, *c.userMetadata.rsplit(" ", 1)) for c in commits]


def _closest(spark: SparkSession, lakehouse: Lakehouse, tracking_num: str) -> list[str]:
    """The table's numbers nearest to an unknown one (edit distance up to 2, case ignored)."""
    table = read_table(spark, lakehouse.table_uri(ORDER_TRACKING))
    if table is None:
        return []
    distance = F.levenshtein(F.upper(schema.TRACKING_NUM), F.lit(tracking_num.upper()), 2)
    rows = (
        table.select(schema.TRACKING_NUM, distance.alias("d"))
        .where(F.col("d") >= 0)
        .orderBy("d", schema.TRACKING_NUM)
        .limit(CLOSEST)
        .collect()
    )
    return [r[schema.TRACKING_NUM] for r in rows]


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def render(explanation: Explanation) -> str:
    """The explanation as Markdown (the CLI prints it, the UI shows it)."""
    key = explanation.tracking_num
    out = [f"# {key}", ""]
    if explanation.current is None and not explanation.lines:
        out.append(f"**{key} was never received**: no valid or quarantined line holds it.")
        if explanation.closest:
            out.append("")
            out.append("Closest known numbers: " + ", ".join(explanation.closest))
        return "\n".join(out) + "\n"

    row = explanation.current
    if row is None:
        out.append(f"**Not in order_tracking**: no valid line of {key} has been merged.")
    else:
        out.append(
            f"**Current row**: {row[schema.STATUS]}, last update {row[schema.LAST_UPDATE]}, "
            f"from {row[schema.SOURCE_FILE]} line {row[schema.SOURCE_LINE]}."
        )
        run_id, day, merge = explanation.current_merge
        where = (
            f"order_tracking version {merge.version} at {merge.timestamp}"
            if merge
            else "a commit no longer in the table's history"
        )
        out.append(f"Written by the MERGE of run `{run_id}` for day {day}: {where}.")
    out += ["", f"## Lines received ({len(explanation.lines)})", ""]
    out.append("| day | file | line | landed at | status | last update | what happened | line as received |")
    out.append("|---|---|---|---|---|---|---|---|")
    for line in explanation.lines:
        version = f" (v{line.version})" if line.version > 1 else ""
        out.append(
            "| "
            + " | ".join(
                _cell(v)
                for v in (
                    line.day,
                    line.file_name + version,
                    line.line,
                    line.landed_at,
                    line.status,
                    line.last_update,
                    line.outcome,
                    f"`{line.raw_text}`",
                )
            )
            + " |"
        )
    out += ["", f"## Status history ({len(explanation.history)} versions)", ""]
    if explanation.history:
        out.append("| status | from | to | events | opened by |")
        out.append("|---|---|---|---|---|")
        for h in explanation.history:
            opened = f"{h[schema.SOURCE_FILE]} line {h[schema.SOURCE_LINE]}"
            to = h[schema.VALID_TO] or "(current)"
            out.append(f"| {_cell(h[schema.STATUS])} | {h[schema.VALID_FROM]} | {to} | {h[schema.EVENT_COUNT]} | {opened} |")
    else:
        out.append("No status history yet (the insight step has not run for its days).")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m order_tracking.explain", description=__doc__.split("\n\n")[0])
    parser.add_argument("tracking_num")
    args = parser.parse_args(argv)
    with command_session() as spark:
        print(explain(spark, Lakehouse(), args.tracking_num.strip()).to_markdown(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
