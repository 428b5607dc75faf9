"""Concurrent writers to the same Delta tables: creation races and conflicts are retried."""

from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timezone

from order_tracking.raw_zone import LedgerEntry, append_ledger, read_ledger
from order_tracking.tables import is_write_conflict


def entry(day: int) -> LedgerEntry:
    now = datetime.now(timezone.utc)
    return LedgerEntry(
        partition_date=date(2023, 1, day), file_name=f"f{day}.csv", version=1,
        raw_path=f"raw/dt=2023-01-0{day}/f{day}.csv", size_bytes=1, md5="x", landed_at=now,
        generation="1", recorded_at=now, run_id=f"run{day}",
    )


def test_concurrent_first_writes_to_a_new_table_all_land(spark, tmp_path):
    uri = str(tmp_path / "raw_file_ledger")
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda day: append_ledger(spark, uri, [entry(day)]), range(1, 5)))

    for day in range(1, 5):
        assert [e.run_id for e in read_ledger(spark, uri, f"2023-01-0{day}")] == [f"run{day}"]


def test_only_delta_conflicts_count_as_conflicts():
    assert is_write_conflict(RuntimeError("io.delta.exceptions.ProtocolChangedException: ..."))
    assert is_write_conflict(RuntimeError("[DELTA_CONCURRENT_APPEND] ConcurrentAppendException"))
    assert not is_write_conflict(RuntimeError("[PATH_NOT_FOUND] Path does not exist"))
