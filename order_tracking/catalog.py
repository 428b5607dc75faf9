"""Every table of the lakehouse, defined once: its name (the folder under the lakehouse root),
schema, partitioning, clustering and properties. Whatever creates, writes or describes a table
reads it here, so adding a table is adding an entry.

Properties apply when a table is created; a table created by an earlier version keeps its old
properties until they are set on it (docs/tables.md shows the statement).
"""

from dataclasses import dataclass, field

from pyspark.sql import SparkSession
from pyspark.sql.types import StructType

from order_tracking import schema
from order_tracking.delta import ensure_table


@dataclass(frozen=True)
class Table:
    name: str
    schema: StructType
    partitioned_by: str | None = None
    clustered_by: str | None = None
    properties: dict[str, str] = field(default_factory=dict)

    def ensure(self, spark: SparkSession, uri: str) -> str:
        """Create the table at `uri` unless it exists (ahead of the first write); returns `uri`."""
        return ensure_table(
            spark,
            uri,
            self.schema,
            partitioned_by=self.partitioned_by,
            clustered_by=self.clustered_by,
            properties=self.properties or None,
        )


# File statistics only on columns a reader filters on: the key (the MERGE's key-range bound,
# lookups), the order number, dates and timestamps. On the free text (address, status, lineage
# strings) they skip nothing and cost every MERGE's write: about 2 s of a 1M-row day's MERGE.
ORDER_TRACKING_STATS_COLUMNS = (
    schema.TRACKING_NUM,
    schema.ORDER_NUM,
    schema.RECEIVED_DATE,
    schema.DELIVER_DATE,
    schema.LAST_UPDATE,
    schema.LANDED_AT,
    schema.PARTITION_DATE,
)

# The newest row per tracking_num. Clustered by tracking_num so a MERGE touches few files;
# deletion vectors so an update marks rows deleted instead of rewriting whole files.
ORDER_TRACKING = Table(
    "order_tracking",
    schema.ORDER_TRACKING_SCHEMA,
    clustered_by=schema.TRACKING_NUM,
    properties={
        "delta.enableDeletionVectors": "true",
        "delta.dataSkippingStatsColumns": ",".join(ORDER_TRACKING_STATS_COLUMNS),
    },
)

# One row per tracking_num per day. Read a whole day at a time, found by its partition: column
# statistics would skip nothing. Collecting them cost up to 2 s of a 1M-row day's write
# (measured within this machine's noise; bench/results/2026-11-26.md, round 5).
STAGED_ORDERS = Table(
    "staged_orders",
    schema.STAGED_SCHEMA,
    partitioned_by=schema.PARTITION_DATE,
    properties={"delta.dataSkippingNumIndexedCols": "0"},
)

# Every line that could not be staged, with its file, line and reason.
QUARANTINED_ORDERS = Table("quarantined_orders", schema.QUARANTINE_SCHEMA, partitioned_by=schema.PARTITION_DATE)

# One row per raw file version: what was moved into the raw zone, from where, with which bytes.
RAW_FILE_LEDGER = Table("raw_file_ledger", schema.LEDGER_SCHEMA)

# Every status report (valid line), one per (tracking_num, timestamp) and day: what the history is
# rebuilt from. Read by key (a history rebuild) and by day (late lines), so statistics stay on.
ORDER_EVENTS = Table("order_events", schema.EVENTS_SCHEMA, partitioned_by=schema.PARTITION_DATE)

# One row per status version; clustered by tracking_num, as its rebuild MERGEs by key.
ORDER_STATUS_HISTORY = Table(
    "order_status_history",
    schema.HISTORY_SCHEMA,
    clustered_by=schema.TRACKING_NUM,
    properties={"delta.enableDeletionVectors": "true"},
)

# The daily figures: one day per partition (column `day`), restated when late data changes a day.
ORDER_STATUS_DAILY = Table("order_status_daily", schema.STATUS_DAILY_SCHEMA, partitioned_by=schema.DAY)
ORDER_KPIS_DAILY = Table("order_kpis_daily", schema.KPIS_SCHEMA, partitioned_by=schema.DAY)

# Every undo of a run's MERGEs into order_tracking: what was undone, to which version, by whom.
ORDER_TRACKING_UNDO_LOG = Table("order_tracking_undo_log", schema.UNDO_LOG_SCHEMA)

TABLES = (
    ORDER_TRACKING,
    STAGED_ORDERS,
    QUARANTINED_ORDERS,
    RAW_FILE_LEDGER,
    ORDER_EVENTS,
    ORDER_STATUS_HISTORY,
    ORDER_STATUS_DAILY,
    ORDER_KPIS_DAILY,
    ORDER_TRACKING_UNDO_LOG,
)
