"""The order-file contract: column names (typo included, users' SQL depends on it) and types."""

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

ORDER_NUM = "order_num"
TRACKING_NUM = "tracking_num"
RECEIVED_DATE = "pck_recieved_date"
DELIVER_DATE = "package_deliver_date"
STATUS = "status"
ADDRESS = "address"
LAST_UPDATE = "last_update_timestamp"

# Every file must carry all of these in its header (in any order); a file that does not is
# quarantined whole rather than half-applied with nulls.
ORDER_COLUMNS = (
    ORDER_NUM,
    TRACKING_NUM,
    RECEIVED_DATE,
    DELIVER_DATE,
    STATUS,
    ADDRESS,
    LAST_UPDATE,
)

ORDER_FIELDS = [
    StructField(ORDER_NUM, LongType()),
    StructField(TRACKING_NUM, StringType(), nullable=False),
    StructField(RECEIVED_DATE, DateType()),
    StructField(DELIVER_DATE, DateType()),
    StructField(STATUS, StringType()),
    StructField(ADDRESS, StringType()),
    StructField(LAST_UPDATE, TimestampType(), nullable=False),
]

# Lineage. (last_update_timestamp, _landed_at, _source_file, _source_line) is the sequence that
# decides which row of a tracking_num wins, so it is stored with every staged and target row.
RESCUED_DATA = "_rescued_data"
SOURCE_FILE = "_source_file"
SOURCE_LINE = "_source_line"
LANDED_AT = "_landed_at"
PARTITION_DATE = "_partition_date"
RUN_ID = "_run_id"

SEQUENCE = (LAST_UPDATE, LANDED_AT, SOURCE_FILE, SOURCE_LINE)

LINEAGE_FIELDS = [
    StructField(RESCUED_DATA, StringType()),
    StructField(SOURCE_FILE, StringType(), nullable=False),
    StructField(SOURCE_LINE, LongType(), nullable=False),
    StructField(LANDED_AT, TimestampType(), nullable=False),
    StructField(PARTITION_DATE, DateType(), nullable=False),
    StructField(RUN_ID, StringType()),
]

STAGED_SCHEMA = StructType(ORDER_FIELDS + LINEAGE_FIELDS)
# Every valid line, one per (tracking_num, last_update_timestamp) and day: the status reports.
EVENTS_SCHEMA = StructType(ORDER_FIELDS + LINEAGE_FIELDS)
ORDER_TRACKING_SCHEMA = StructType(ORDER_FIELDS + LINEAGE_FIELDS)

QUARANTINE_SCHEMA = StructType(
    [
        StructField(PARTITION_DATE, DateType(), nullable=False),
        StructField(SOURCE_FILE, StringType(), nullable=False),
        StructField(SOURCE_LINE, LongType()),
        StructField("raw_text", StringType()),
        StructField("reason", StringType(), nullable=False),
        StructField(RUN_ID, StringType()),
    ]
)

# One row per raw file version (raw_file_ledger).
LEDGER_SCHEMA = StructType(
    [
        StructField("partition_date", DateType(), False),
        StructField("file_name", StringType(), False),
        StructField("version", IntegerType(), False),
        StructField("raw_path", StringType(), False),
        StructField("size_bytes", LongType(), False),
        StructField("md5", StringType(), False),
        StructField("landed_at", TimestampType(), False),
        StructField("generation", StringType()),
        StructField("recorded_at", TimestampType(), False),
        StructField("run_id", StringType()),
    ]
)

# order_status_history: one row per version, a run of a tracking_num's events with one status.
VALID_FROM = "valid_from"
VALID_TO = "valid_to"
IS_CURRENT = "is_current"
EVENT_COUNT = "events"

HISTORY_SCHEMA = StructType(
    [
        StructField(TRACKING_NUM, StringType(), nullable=False),
        StructField(ORDER_NUM, LongType()),
        StructField(STATUS, StringType()),
        StructField(VALID_FROM, TimestampType(), nullable=False),
        StructField(VALID_TO, TimestampType()),
        StructField(IS_CURRENT, BooleanType(), nullable=False),
        # The version's newest event (order_tracking's timestamp, for the current version).
        StructField(LAST_UPDATE, TimestampType(), nullable=False),
        StructField(EVENT_COUNT, LongType(), nullable=False),
        # Of the event that opened the version:
        StructField(RECEIVED_DATE, DateType()),
        StructField(DELIVER_DATE, DateType()),
        StructField(SOURCE_FILE, StringType(), nullable=False),
        StructField(SOURCE_LINE, LongType(), nullable=False),
        StructField(LANDED_AT, TimestampType(), nullable=False),
        StructField(PARTITION_DATE, DateType(), nullable=False),
        # The run that last rebuilt the version.
        StructField(RUN_ID, StringType()),
    ]
)

DAY = "day"
STATUS_DAILY_SCHEMA = StructType(
    [
        StructField(DAY, DateType(), nullable=False),
        StructField(STATUS, StringType()),
        StructField("orders", LongType(), nullable=False),
    ]
)

# Defined in docs/insights.md and in order_kpis_daily's description.
KPI_FIELDS = [
    StructField("orders_known", LongType(), nullable=False),
    StructField("status_changes", LongType(), nullable=False),
    StructField("deliveries", LongType(), nullable=False),
    StructField("on_time_deliveries", LongType(), nullable=False),
    StructField("on_time_rate", DoubleType()),
    StructField("transit_days_p50", IntegerType()),
    StructField("transit_days_p90", IntegerType()),
    StructField("entered_delayed", LongType(), nullable=False),
    StructField("returns", LongType(), nullable=False),
    StructField("open_orders", LongType(), nullable=False),
    StructField("open_older_than_3_days", LongType(), nullable=False),
    StructField("open_older_than_7_days", LongType(), nullable=False),
    StructField("late_lines_received", LongType(), nullable=False),
]
KPIS_SCHEMA = StructType([StructField(DAY, DateType(), nullable=False)] + KPI_FIELDS)

KNOWN_STATUSES = (
    "Order Placed",
    "In Transit",
    "Out for Delivery",
    "Delivered",
    "Delayed",
    "Returned",
)

DELIVERED = "Delivered"
DELAYED = "Delayed"
RETURNED = "Returned"
# An order is closed once delivered or returned; open otherwise (the backlog).
CLOSED_STATUSES = (DELIVERED, RETURNED)

# How far along an order is. A version whose status ranks below the one before it is a step
# backwards (Delivered -> In Transit, Returned -> Delivered): reported, never refused. Delayed is
# a kind of in transit.
STATUS_PROGRESS = {
    "Order Placed": 0,
    "In Transit": 1,
    DELAYED: 1,
    "Out for Delivery": 2,
    DELIVERED: 3,
    RETURNED: 4,
}

# order_tracking_undo_log: one row per undo of a run's MERGEs (order_tracking.undo).
UNDO_LOG_SCHEMA = StructType(
    [
        StructField("undone_run_id", StringType(), nullable=False),
        StructField("days", StringType(), nullable=False),
        StructField("undone_merge_versions", ArrayType(LongType()), nullable=False),
        StructField("later_merges_undone", ArrayType(StringType()), nullable=False),
        StructField("restored_to_version", LongType(), nullable=False),
        StructField("restore_version", LongType(), nullable=False),
        StructField("rows_before", LongType(), nullable=False),
        StructField("rows_after", LongType(), nullable=False),
        StructField("undone_at", TimestampType(), nullable=False),
        StructField("undone_by", StringType(), nullable=False),
    ]
)
