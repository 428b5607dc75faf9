"""The raw zone: every landed file's bytes, kept under a path never reused, and the ledger that
remembers every version (raw_file_ledger). How a day's files move in, and in which order of
effects, is daily.land_day.
"""

import re
from dataclasses import asdict, dataclass
from datetime import date, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from order_tracking.partitions import base_name
from order_tracking.resources.landing import LandedFile, LandingZone, SourceChanged
from order_tracking.catalog import RAW_FILE_LEDGER
from order_tracking.resources.lakehouse import Lakehouse, RawPathTaken
from order_tracking.delta import as_view, read_table, retry_on_conflict, table_ref


@dataclass(frozen=True)
class LedgerEntry:
    partition_date: date
    file_name: str
    version: int
    raw_path: str  # relative to the lakehouse root
    size_bytes: int
    md5: str
    landed_at: datetime
    generation: str | None
    recorded_at: datetime
    run_id: str | None


def safe_name(name: str) -> str:
    """A file name that cannot leave its raw folder: no separators, no leading dots, no oddities."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", base_name(name)).lstrip(".")
    return cleaned or "unnamed"


def raw_path(partition_key: str, name: str, version: int) -> str:
    folder = f"raw/dt={partition_key}"
    return f"{folder}/{safe_name(name)}" if version == 1 else f"{folder}/v{version}/{safe_name(name)}"


def read_ledgers(spark: SparkSession, ledger_uri: str, days: list[str]) -> dict[str, list[LedgerEntry]]:
    """Each day's recorded file versions, in one read for all the days."""
    ledgers: dict[str, list[LedgerEntry]] = {day: [] for day in days}
    ledger = read_table(spark, ledger_uri)
    if ledger is None:
        return ledgers
    rows = ledger.where(F.col("partition_date").isin([date.fromisoformat(d) for d in days])).collect()
    for entry in sorted((LedgerEntry(**row.asDict()) for row in rows), key=lambda e: (e.file_name, e.version)):
        ledgers[entry.partition_date.isoformat()].append(entry)
    return ledgers


def read_ledger(spark: SparkSession, ledger_uri: str, partition_key: str) -> list[LedgerEntry]:
    return read_ledgers(spark, ledger_uri, [partition_key])[partition_key]


def append_ledger(spark: SparkSession, ledger_uri: str, entries: list[LedgerEntry]) -> None:
    """Record copied files; an entry whose (day, name, bytes) is already recorded is skipped, so
    two runs of one day that meet here (no pool configured) record each file once: the later
    commit conflicts, is retried, and then finds the row."""
    if entries:
        RAW_FILE_LEDGER.ensure(spark, ledger_uri)
        frame = spark.createDataFrame(
            [tuple(asdict(e).values()) for e in entries], RAW_FILE_LEDGER.schema
        )
        same_file = " AND ".join(f"l.{c} = e.{c}" for c in ("partition_date", "file_name", "md5"))
        with as_view(frame) as view:
            statement = (
                f"MERGE INTO {table_ref(ledger_uri)} l USING {view} e ON {same_file}"
                " WHEN NOT MATCHED THEN INSERT *"
            )
            retry_on_conflict(lambda: spark.sql(statement).collect())


def copy_to_a_free_raw_path(
    lakehouse: Lakehouse,
    landing: LandingZone,
    file: LandedFile,
    md5: str,
    partition_key: str,
    version: int,
    used_paths: set[str],
) -> tuple[int, str, int]:
    """Copy `file` to the first raw path from `version` on that is free or already holds exactly
    these bytes (left by a killed run, or written a moment ago by a concurrent run of the day).
    Returns (version, raw path, size). Raises SourceChanged if the landed file changed."""
    while True:
        relpath = raw_path(partition_key, file.name, version)
        existing = None if relpath in used_paths else lakehouse.raw_md5(relpath)
        if relpath in used_paths or existing not in (None, md5):
            version += 1  # never overwrite: an unrecorded file may be the only copy of its bytes
            continue
        if existing == md5:
            return version, relpath, file.size
        try:
            copied_md5, size = lakehouse.store_raw(relpath, landing, file)
        except RawPathTaken:
            continue  # someone wrote it since we looked: look again
        if copied_md5 != md5:
            # Replaced while we streamed it; the copy stays (it is real bytes) and the new
            # generation is picked up by a later run.
            used_paths.add(relpath)
            raise SourceChanged(file.name)
        return version, relpath, size
