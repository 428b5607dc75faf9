"""One daily partitions definition, and the rule that puts an order file in a partition."""

import fnmatch
import re
from datetime import date, datetime, timezone

from dagster import DailyPartitionsDefinition

FIRST_DAY = "2023-01-01"

# end_offset=1: today's partition exists, so files landing today are processed today.
daily_partitions = DailyPartitionsDefinition(start_date=FIRST_DAY, timezone="UTC", end_offset=1)

# Tags of a run that covers a range of days (a range backfill sets them; so can a RunRequest).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

ORDER_FILE_PATTERNS = ("*.csv", "*.csv.gz")

# 2023_01_05, 2023-01-05 or 20230105; one separator style per date, not glued to other digits.
_DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4})([-_]?)(\d{2})\2(\d{2})(?!\d)")


def base_name(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1]


def is_order_file(name: str, patterns: tuple[str, ...] = ORDER_FILE_PATTERNS) -> bool:
    """Order files match the patterns; dot-files are uploads in progress, never order files."""
    base = base_name(name)
    if not base or base.startswith(".") or name.endswith("/"):
        return False
    return any(fnmatch.fnmatch(base.lower(), pattern.lower()) for pattern in patterns)


def date_in_name(name: str) -> date | None:
    """The first valid calendar date written in the file name, if any."""
    for match in _DATE_IN_NAME.finditer(base_name(name)):
        year, _, month, day = match.groups()
        try:
            return date(int(year), int(month), int(day))
        except ValueError:
            continue
    return None


def partition_for_file(name: str, landed_at: datetime) -> str:
    """A file belongs to the day named in it; a file with no date belongs to the UTC day it landed."""
    named = date_in_name(name)
    if named is None:
        named = landed_at.astimezone(timezone.utc).date()
    return named.isoformat()


def out_of_range_reason(partition_key: str, now: datetime | None = None) -> str | None:
    """Why a file's partition cannot be processed (None when it can)."""
    if partition_key < FIRST_DAY:
        return f"dated {partition_key}, before the first partition {FIRST_DAY}"
    # end_offset=1: the last partition is today's (UTC).
    last = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).date().isoformat()
    if partition_key > last:
        return f"dated {partition_key}, after the last partition {last} (in the future)"
    return None
