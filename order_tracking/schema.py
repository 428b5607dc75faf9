"""The order-file contract: column names (typo included, users' SQL depends on it) and types."""

from pyspark.sql.types import (
    DateType,
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

KNOWN_STATUSES = (
    "Order Placed",
    "In Transit",
    "Out for Delivery",
    "Delivered",
    "Delayed",
    "Returned",
)
