"""Moving landed files into the raw zone, and the ledger that remembers every version.

Order of effects, chosen so a crash at any point loses nothing and double-counts nothing:
1. copy the landed bytes to a raw path that was never used (verified by md5),
2. append every copied file to the ledger in one Delta commit,
3. only then remove the landed files.
A rerun after (1) finds the identical raw file and reuses it; after (2) it recognises the landed
file as already recorded and just removes it.
"""

import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from order_tracking.faults import crash_point
from order_tracking.partitions import base_name, is_order_file, partition_for_file
from order_tracking.resources.landing import LandedFile, LandingZone, SourceChanged
from order_tracking.catalog import RAW_FILE_LEDGER
from order_tracking.resources.lakehouse import Lakehouse, RawPathTaken
from order_tracking.tables import as_view, read_table, retry_on_conflict, table_ref


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


def read_ledger(spark: SparkSession, ledger_uri: str, partition_key: str) -> list[LedgerEntry]:
    ledger = read_table(spark, ledger_uri)
    if ledger is None:
        return []
    rows = ledger.where(F.col("partition_date") == F.lit(partition_key).cast("date")).collect()
    return sorted(
        (LedgerEntry(**row.asDict()) for row in rows), key=lambda e: (e.file_name, e.version)
    )


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


def _copy_to_a_free_raw_path(
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


@dataclass
class IngestReport:
    recorded: list[LedgerEntry] = field(default_factory=list)
    replays: list[str] = field(default_factory=list)  # same name and bytes as a recorded version
    changed_while_moving: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def bytes_moved(self) -> int:
        return sum(e.size_bytes for e in self.recorded)


def files_of_partition(files: list[LandedFile], partition_key: str) -> list[LandedFile]:
    return [
        f
        for f in files
        if is_order_file(f.name) and partition_for_file(f.name, f.landed_at) == partition_key
    ]


def ingest_partition(
    spark: SparkSession,
    landing: LandingZone,
    lakehouse: Lakehouse,
    ledger_uri: str,
    partition_key: str,
    landed: list[LandedFile],
    run_id: str,
) -> IngestReport:
    """Move the landed order files of one partition into the raw zone and record them."""
    report = IngestReport()
    ledger = read_ledger(spark, ledger_uri, partition_key)
    known = {(e.file_name, e.md5) for e in ledger}
    used_paths = {e.raw_path for e in ledger}
    done: list[LandedFile] = []

    for file in landed:
        try:
            md5 = landing.md5(file)
        except SourceChanged:
            report.changed_while_moving.append(file.name)
            continue
        if (file.name, md5) in known:
            report.replays.append(file.name)
            done.append(file)
            continue
        version = 1 + max((e.version for e in ledger if e.file_name == file.name), default=0)
        try:
            version, relpath, size = _copy_to_a_free_raw_path(
                lakehouse, landing, file, md5, partition_key, version, used_paths
            )
        except SourceChanged:
            report.changed_while_moving.append(file.name)
            continue
        entry = LedgerEntry(
            partition_date=date.fromisoformat(partition_key),
            file_name=file.name,
            version=version,
            raw_path=relpath,
            size_bytes=size,
            md5=md5,
            landed_at=file.landed_at,
            generation=file.generation,
            recorded_at=datetime.now(timezone.utc),
            run_id=run_id,
        )
        report.recorded.append(entry)
        ledger.append(entry)
        known.add((file.name, md5))
        used_paths.add(relpath)
        done.append(file)

    crash_point("after_raw_copy")
    append_ledger(spark, ledger_uri, report.recorded)
    report.removed = [f.name for f in done if landing.remove(f)]
    return report
