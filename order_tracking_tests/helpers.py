"""Test helpers: writing order files, running the pipeline, and a plain-Python oracle."""

import csv
import io
import os
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

from dagster import AssetKey, AssetMaterialization, materialize
from pyspark.sql import Row
from pyspark.sql import functions as F

from order_tracking.assets import order_tracking_pipeline
from order_tracking.partitions import RANGE_END_TAG, RANGE_START_TAG
from order_tracking.transforms.parse import (
    RawFile,
    classify_lines,
    file_headers,
    read_records,
)

HEADER = "order_num,tracking_num,pck_recieved_date,package_deliver_date,status,address,last_update_timestamp"
BUSINESS_COLUMNS = HEADER.split(",")
GOOD_LINE = "1000,TRK1000,2023-01-05,2023-01-07,In Transit,1 Main St,2023-01-05 10:00:00"
PIPELINE = [order_tracking_pipeline]


def materialize_selected(names: list[str], **kwargs):
    """Materialize some of the day's three assets (the pipeline step does only their part)."""
    return materialize(PIPELINE, selection=names, **kwargs)


def materializations(result, asset: str) -> list[AssetMaterialization]:
    """The run's materializations of one asset (one per day of a range run)."""
    return [
        event.step_materialization_data.materialization
        for event in result.get_asset_materialization_events()
        if event.asset_key == AssetKey(asset)
    ]


def land(folder: Path, name: str, content: bytes | str, landed_at: datetime | None = None) -> Path:
    """Write a file into a landing folder; its mtime is its landing time (the tie-break order)."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    if landed_at is not None:
        stamp = landed_at.timestamp()
        os.utime(path, (stamp, stamp))
    return path


def order_line(n: int, status: str = "In Transit", address: str | None = None, updated: str | None = None) -> str:
    """A valid line of a 2024-05-02 file for order n (TRK<n>); any field may be replaced."""
    address = address if address is not None else f"{n} Main St"
    updated = updated or f"2024-05-02 10:{n % 60:02d}:00"
    return f"{n},TRK{n},2024-05-01,2024-05-06,{status},{address},{updated}"


def stray_quotes_day() -> tuple[str, list[str]]:
    """Issue #21's file: 50 valid lines (TRK1-TRK50) and, on lines 12 and 43, a field that opens a
    quote and never closes it. Returns the file's text and the two broken lines."""
    lines = [order_line(n) for n in range(1, 51)]
    broken = [
        '9001,TRK9001,2024-05-01,2024-05-06,Delivered,12 Elm St,"2024-05-02 23:59:00',
        '9002,TRK9002,2024-05-01,2024-05-06,Delayed,"9 Pine St,2024-05-02 23:58:00',
    ]
    lines.insert(10, broken[0])
    lines.insert(41, broken[1])
    return "\n".join([HEADER, *lines]) + "\n", broken


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2023, 1, day, hour, tzinfo=timezone.utc)


def classify_files(spark, folder: Path, files: dict[str, bytes | str], partition="2023-01-05"):
    """Parse files through the staging transforms; returns the classified rows as dicts by line."""
    raw = []
    for index, (name, content) in enumerate(files.items()):
        path = land(folder, name, content)
        raw.append(RawFile(str(path), name, at(5, index)))
    headers = file_headers(spark, raw)
    lines = read_records(spark, raw, headers)
    classified = classify_lines(spark, lines, headers, partition)
    # Bytes that are not UTF-8 cannot leave Spark as text: shown with replacement characters.
    rows = classified.withColumn("raw_text", F.make_valid_utf8("raw_text")).collect()
    return sorted((r.asDict() for r in rows), key=lambda r: (r["_source_file"], r["_source_line"]))


def run_days(resources: dict, days, instance=None) -> list:
    results = []
    for day in days:
        result = materialize(PIPELINE, partition_key=day, resources=resources, instance=instance)
        assert result.success
        results.append(result)
    return results


def run_range(resources: dict, first: str, last: str, instance=None):
    """One run over a range of days, as a backfill under BackfillPolicy.single_run launches it."""
    result = materialize(
        PIPELINE,
        resources=resources,
        instance=instance,
        tags={RANGE_START_TAG: first, RANGE_END_TAG: last},
    )
    assert result.success
    return result


def business_rows(frame) -> list[tuple]:
    """The table's business columns as sorted tuples of strings (timestamps as ISO text)."""
    rows = frame.select(*BUSINESS_COLUMNS).collect()
    return sorted(tuple(None if v is None else str(v) for v in row) for row in rows)


def oracle(files: list[tuple[str, str, datetime]]) -> list[tuple]:
    """Independent reference: per tracking_num, the row with the greatest
    (last_update_timestamp, landed_at, file name, line number), over well-formed lines only."""
    best: dict[str, tuple] = {}
    for name, text, landed_at in files:
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        for row in reader:
            key = (row["last_update_timestamp"], landed_at, name, reader.line_num)
            tracking = row["tracking_num"]
            if tracking not in best or key > best[tracking][0]:
                # An empty field is staged as null, as business_rows shows it.
                best[tracking] = (key, tuple(row[c] or None for c in BUSINESS_COLUMNS))
    return sorted(value for _, value in best.values())


SAMPLE_DAYS = ["2023-01-01", "2023-01-02", "2023-01-03", "2023-01-04", "2023-01-05"]
# The table after the five sample days, written out (and checked against the oracle below).
EXPECTED = Path(__file__).parent / "expected" / "order_tracking_after_sample_days.csv"


def expected_rows() -> list[tuple]:
    with EXPECTED.open() as f:
        return sorted(tuple(row) for row in list(csv.reader(f))[1:])


def sample_days_oracle(days: int) -> list[tuple]:
    """The oracle's table after the first `days` sample files, landed in day order."""
    from order_tracking.sample_data import sample_files

    files = sample_files()[:days]
    return oracle([(p.name, p.read_text(), at(day)) for day, p in enumerate(files, start=1)])


# The sample days' insights, worked out by hand from the files (test_insights.py checks them; the
# daemon and Databricks tests expect the same). The status at the end of each sample day of every
# order known by then:
STATUS_MIX = {
    "2023-01-01": {"Returned": 3, "In Transit": 6, "Out for Delivery": 1, "Delayed": 5, "Delivered": 5},
    "2023-01-02": {"Delivered": 5, "Delayed": 4, "In Transit": 6, "Out for Delivery": 3, "Returned": 3},
    "2023-01-03": {"Delivered": 7, "In Transit": 4, "Delayed": 3, "Returned": 5, "Out for Delivery": 3},
    "2023-01-04": {"In Transit": 6, "Delivered": 10, "Out for Delivery": 2, "Delayed": 2, "Returned": 3},
    "2023-01-05": {"Out for Delivery": 8, "Returned": 11, "Delivered": 3, "In Transit": 1},
}

# Per day: orders known, versions begun, first deliveries (all on time: every promised date is
# after its update in the sample), transit days p50/p90, Delayed and Returned versions begun,
# open orders (and those received more than 3 days before), late lines in the day's own file.
KPIS = {
    #              known changes deliv  p50 p90 delayed returns open  >3d late
    "2023-01-01": (20, 20, 5, 0, 0, 5, 3, 12, 0, 0),
    "2023-01-02": (21, 18, 5, 1, 1, 3, 3, 13, 0, 0),
    "2023-01-03": (22, 9, 2, 0, 2, 1, 2, 10, 0, 0),
    "2023-01-04": (23, 21, 7, 3, 3, 2, 3, 10, 0, 3),
    "2023-01-05": (23, 17, 1, 4, 4, 0, 9, 9, 8, 6),
}
KPI_NAMES = (
    "orders_known", "status_changes", "deliveries", "transit_days_p50", "transit_days_p90",
    "entered_delayed", "returns", "open_orders", "open_older_than_3_days", "late_lines_received",
)  # fmt: skip


def materialize_day(spark, landing, lakehouse, day: str, history: bool = False) -> None:
    """What a run of the three assets does for one day, without Dagster (their own functions);
    with `history`, the status history's rebuild of the day too."""
    from order_tracking.daily import land_day, merge_day, stage_day
    from order_tracking.insights import rebuild_history

    run_id = uuid.uuid4().hex
    land_day(spark, landing, lakehouse, day, landing.list_files(), run_id)
    report = stage_day(spark, lakehouse, day, run_id)
    merge_day(spark, lakehouse, day, run_id, report.staged)
    if history:
        rebuild_history(spark, lakehouse, day, day, run_id)


# Secret values a deployment may have in its environment. The local run never needs them; they
# are set so the security test can prove none of them is echoed anywhere.
SECRET_MARKERS = {
    "DATABRICKS_TOKEN": "dapi-LEAKCHECK-0f1e2d3c4b5a",
    "DATABRICKS_CLIENT_SECRET": "dose-LEAKCHECK-a1b2c3d4e5",
    "GCS_HMAC_SECRET": "hmac-LEAKCHECK-99887766",
}


def staged_order(tracking, ts, landed_day, source, line, status="In Transit"):
    """A staged_orders row: its key, timestamp, landing day, file and line (the sequence)."""
    return Row(
        order_num=1,
        tracking_num=tracking,
        pck_recieved_date=date(2023, 1, 1),
        package_deliver_date=date(2023, 1, 2),
        status=status,
        address="1 Main St",
        last_update_timestamp=datetime.fromisoformat(ts),
        _rescued_data=None,
        _source_file=source,
        _source_line=line,
        _landed_at=at(landed_day).replace(tzinfo=None),
        _partition_date=date(2023, 1, landed_day),
        _run_id="run",
    )


# The landing prefix in the daemon tests' buckets.
LANDING_PREFIX = "incoming"


# A sensor's tick lines, every 2 s in the daemon tests: they would fill the end of a daemon's log.
_TICK_NOISE = ("Checking for new runs for sensor", "skipped: no new")


def wait_for(condition, log: Path, what: str, timeout: float = 600, state=None) -> None:
    """Poll `condition` every 3 s; on timeout fail with the end of `log` (a daemon's, the sensors'
    idle ticks left out) and what `state()` says (the runs, say)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(3)
    lines = [line for line in log.read_text().splitlines() if not any(n in line for n in _TICK_NOISE)]
    found = state() if state else ""
    raise AssertionError(f"{what} not reached\n{found}\n" + "\n".join(lines)[-6000:])
