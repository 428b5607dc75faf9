"""Raw order-file lines -> typed order rows plus quarantined lines, with a reason for each.

Files are read line by line with Spark's text source (splittable, streaming, gzip-aware) and every
line keeps its file and 1-based line number, so a quarantined line can be found in the raw file.
Fields are split by us rather than by Spark's CSV reader: the CSV reader turns both a missing
field and an empty one into null, so it cannot tell `a,,` from `a`, and it silently accepts
unterminated quotes. Both must be quarantined here, not guessed at. A line without a quote
character (nearly every line) is split on commas; only a line with a quote pays for the RFC 4180
regular expression.
"""

import csv
import operator
from dataclasses import dataclass
from datetime import datetime
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from order_tracking import schema

# A field is either quoted (doubled quotes inside, optional blanks around) or unquoted (may not
# start with a quote). Possessive quantifiers keep a long unterminated quote from backtracking.
_QUOTED = r'\s*+"(?:[^"]++|"")*+"\s*+(?=,|$)'
_UNQUOTED = r'(?:[^,"][^,]*+)?+'
_FIELD = f"(?:{_QUOTED}|{_UNQUOTED})"
CSV_LINE = f"^{_FIELD}(?:,{_FIELD})*$"
CSV_FIELDS = f"(?:^|,)({_FIELD})"

NUMBERED_LINES_SCHEMA = (
    f"{schema.SOURCE_FILE} string, {schema.SOURCE_LINE} long, {schema.LANDED_AT} timestamp, value string"
)

TIMESTAMP_FORMATS = ("yyyy-MM-dd HH:mm:ss[.SSSSSS]", "yyyy-MM-dd'T'HH:mm:ss[.SSSSSS][XXX]")
DATE_FORMAT = "yyyy-MM-dd"


@dataclass(frozen=True)
class RawFile:
    """One raw file version to read: where Spark reads it, how lineage names it, when it landed."""

    uri: str
    source: str
    landed_at: datetime


@dataclass(frozen=True)
class FileHeader:
    source: str
    text: str
    columns: tuple[str, ...]

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(c for c in schema.ORDER_COLUMNS if c not in self.positions)

    @property
    def positions(self) -> dict[str, int]:
        """1-based position of each order column (first occurrence wins)."""
        found: dict[str, int] = {}
        for index, name in enumerate(self.columns, start=1):
            if name in schema.ORDER_COLUMNS and name not in found:
                found[name] = index
        return found

    @property
    def extras(self) -> list[tuple[str, int]]:
        known = set(self.positions.values())
        return [(n or f"_c{i}", i) for i, n in enumerate(self.columns, start=1) if i not in known]


def parse_header(source: str, text: str) -> FileHeader:
    cleaned = text.lstrip("\ufeff")
    fields = next(csv.reader([cleaned]), [])
    return FileHeader(source, cleaned.strip(), tuple(f.strip().lower() for f in fields))


BLOCK_OFFSETS_SCHEMA = StructType(
    [
        StructField(schema.SOURCE_FILE, StringType()),
        StructField("_block", LongType()),
        StructField("_first_id", LongType()),
        StructField("_lines_before", LongType()),
    ]
)


def read_numbered_lines(spark: SparkSession, files: list[RawFile]) -> DataFrame:
    """Every line of every file with its 1-based line number: (_source_file, _source_line, _landed_at, value).

    Within one split of a file, rows come out in byte order and monotonically_increasing_id() is
    consecutive, so a line's number is its offset in the split plus the lines of earlier splits.
    This keeps big files splittable instead of funnelling each through a single task.
    """
    if not files:
        return spark.createDataFrame([], NUMBERED_LINES_SCHEMA)
    reads = [
        spark.read.text(f.uri).select(
            F.lit(f.source).alias(schema.SOURCE_FILE),
            F.lit(f.landed_at).cast("timestamp").alias(schema.LANDED_AT),
            F.col("_metadata.file_block_start").alias("_block"),
            F.monotonically_increasing_id().alias("_id"),
            "value",
        )
        for f in files
    ]
    lines = reads[0]
    for more in reads[1:]:
        lines = lines.unionByName(more)

    # Each split's first line number, from the lines per split: a few rows (one per split of
    # each file), summed on the driver. (A window partitioned by file did it in the plan, but
    # with one file the file name is a constant, the optimizer dropped the partitioning, and
    # Spark warned of a window without partitions on every run.)
    per_split = lines.groupBy(schema.SOURCE_FILE, "_block").agg(
        F.count(F.lit(1)).alias("_lines"), F.min("_id").alias("_first_id")
    )
    offsets, lines_so_far = [], {}
    for split in sorted(per_split.collect(), key=lambda row: (row[0], row[1])):
        before = lines_so_far.get(split[0], 0)
        offsets.append((split[0], split[1], split["_first_id"], before))
        lines_so_far[split[0]] = before + split["_lines"]
    blocks = spark.createDataFrame(offsets, BLOCK_OFFSETS_SCHEMA)
    return lines.join(F.broadcast(blocks), [schema.SOURCE_FILE, "_block"]).select(
        schema.SOURCE_FILE,
        (F.col("_id") - F.col("_first_id") + F.col("_lines_before") + 1).alias(schema.SOURCE_LINE),
        schema.LANDED_AT,
        "value",
    )


# A quote left open for more lines than this is a stray quote, not a field holding line breaks.
MAX_RECORD_LINES = 50

# The contract's fields that may hold line breaks. A number, a date, a timestamp or a tracking
# number never spans lines: a "record" with a break in one of those is two stray quotes.
FREE_TEXT = (schema.STATUS, schema.ADDRESS)
REQUIRED = (schema.ORDER_NUM, schema.TRACKING_NUM, schema.LAST_UPDATE)


def _quote_count(text: Column) -> Column:
    return F.length(text) - F.length(F.replace(text, F.lit('"'), F.lit("")))


def read_records(spark: SparkSession, files: list[RawFile], headers: list[FileHeader]) -> DataFrame:
    """Every CSV record of the files, numbered by its first line: the numbered lines, with the
    lines of a record whose quoted fields hold line breaks joined (join_quoted_records)."""
    lines = read_numbered_lines(spark, files)
    # Decided here, in one cheap pass, rather than inside the plan: a day without an odd-quoted
    # line (the usual day) then reads its lines once and pays for none of the joining. The pass
    # reads the plain text, not the numbered lines, whose numbering costs Spark jobs of its own;
    # so a header's quotes count too, which at worst sends a day down the joining path (right for
    # any day, only slower).
    odd = _quote_count(F.col("value")) % 2 == 1
    if not files or spark.read.text([f.uri for f in files]).where(odd).isEmpty():
        return lines
    return join_quoted_records(spark, lines, headers)


def join_quoted_records(
    spark: SparkSession, lines: DataFrame, headers: list[FileHeader]
) -> DataFrame:
    """Numbered lines -> CSV records, numbered by their first line.

    A quoted field may hold line breaks (RFC 4180). A line that leaves a quote open (an odd number
    of quote characters) is read together with the lines up to the next such line as one record,
    breaks kept as "\\n", only when that record is genuine:
    - it spans at most MAX_RECORD_LINES lines;
    - its quotes close fields and it has its file's number of fields;
    - its breaks fall in free-text fields (FREE_TEXT, or a column the contract does not know);
    - neither its first nor its last line is a whole valid record once its quote characters are
      dropped: such a line is a record with a stray quote, not half of a field.
    Otherwise the opening line holds a stray quote: it stays alone (classify_lines quarantines it
    for its quoting) and reading goes on at the next line, which may open a genuine record. So two
    stray quotes far apart never join the valid lines between them. read_records calls it only
    for days with an odd-quoted line.
    """
    opens = (F.col(schema.SOURCE_LINE) > 1) & (_quote_count(F.col("value")) % 2 == 1)
    # Only the odd-quoted lines are ordered (a few in a file), never a whole file: each candidate
    # record is the span from one of them to the next, looked up by line number.
    in_file = Window.partitionBy(schema.SOURCE_FILE).orderBy("_from")
    openers = (
        lines.where(opens)
        .select(schema.SOURCE_FILE, F.col(schema.SOURCE_LINE).alias("_from"), F.col("value").alias("_first"))
        .withColumn("_to", F.lead("_from").over(in_file))
        .withColumn("_last", F.lead("_first").over(in_file))
    )
    records = _genuine_records(spark, lines, openers, headers).select(
        schema.SOURCE_FILE,
        F.explode(F.sequence("_from", "_to")).alias(schema.SOURCE_LINE),
        F.col("_from").alias("_record"),
    )
    marked = lines.join(records, [schema.SOURCE_FILE, schema.SOURCE_LINE], "left")
    joined = (
        marked.where(F.col("_record").isNotNull())
        .groupBy(schema.SOURCE_FILE, "_record", schema.LANDED_AT)
        .agg(F.sort_array(F.collect_list(F.struct(schema.SOURCE_LINE, "value"))).alias("_parts"))
        .select(
            schema.SOURCE_FILE,
            F.col("_record").alias(schema.SOURCE_LINE),
            schema.LANDED_AT,
            F.array_join(F.transform("_parts", lambda part: part["value"]), "\n").alias("value"),
        )
    )
    alone = marked.where(F.col("_record").isNull()).select(*lines.columns)
    return alone.unionByName(joined)


def _genuine_records(
    spark: SparkSession, lines: DataFrame, openers: DataFrame, headers: list[FileHeader]
) -> DataFrame:
    """(_source_file, _from, _to): first and last line of each multi-line record, read from the top."""
    spans = openers.where(F.col("_to") - F.col("_from") < MAX_RECORD_LINES).select(
        schema.SOURCE_FILE,
        "_from",
        "_first",
        "_last",
        F.explode(F.sequence("_from", F.col("_to") - 1)).alias(schema.SOURCE_LINE),
    )
    verdicts = (
        lines.join(spans, [schema.SOURCE_FILE, schema.SOURCE_LINE])
        .groupBy(schema.SOURCE_FILE, "_from", "_first", "_last")
        .agg(F.sort_array(F.collect_list(F.struct(schema.SOURCE_LINE, "value"))).alias("_parts"))
        .join(F.broadcast(_headers_frame(spark, headers)), schema.SOURCE_FILE)
        .select(
            schema.SOURCE_FILE,
            "_from",
            _is_genuine_record(
                F.concat_ws("\n", F.transform("_parts", lambda part: part["value"]), F.col("_last")),
                F.col("_first"),
                F.col("_last"),
            ).alias("_genuine"),
        )
    )
    # An odd-quoted line opens a record when its record is genuine and the line was not taken as
    # the previous record's last line: along a run of consecutive genuine candidates that
    # alternates (open, close, open, ...), starting over after each stray quote.
    in_file = Window.partitionBy(schema.SOURCE_FILE).orderBy("_from")
    run_start = F.max(F.when(~F.coalesce("_genuine_before", F.lit(False)), F.col("_n")))
    return (
        openers.join(verdicts, [schema.SOURCE_FILE, "_from"], "left")
        .withColumn("_genuine", F.coalesce("_genuine", F.lit(False)))
        .withColumn("_n", F.row_number().over(in_file))
        .withColumn("_genuine_before", F.lag("_genuine").over(in_file))
        .withColumn("_run_start", run_start.over(in_file.rowsBetween(Window.unboundedPreceding, 0)))
        .where(F.col("_genuine") & ((F.col("_n") - F.col("_run_start")) % 2 == 0))
        .select(schema.SOURCE_FILE, "_from", "_to")
    )


def _is_genuine_record(text: Column, first: Column, last: Column) -> Column:
    """A joined candidate is a record, not two stray quotes (the file's header columns in scope)."""
    fields = _quoted_fields(text)
    typed_field_breaks = [
        F.coalesce(F.instr(_field(fields, name), "\n") > 0, F.lit(False))
        for name in schema.ORDER_COLUMNS
        if name not in FREE_TEXT
    ]
    return (
        text.rlike(CSV_LINE)
        & (F.size(fields) == F.col("_width"))
        & ~reduce(operator.or_, typed_field_breaks)
        & ~_is_whole_record(F.replace(first, F.lit('"'), F.lit("")))
        & ~_is_whole_record(F.replace(last, F.lit('"'), F.lit("")))
    )


def _is_whole_record(line: Column) -> Column:
    """`line`, a text without quotes, is a valid record of its file on its own."""
    pieces = F.split(line, ",", -1)
    fine = []
    for name in schema.ORDER_COLUMNS:
        if name not in FREE_TEXT:
            text = F.btrim(_field(pieces, name), F.lit(_BLANKS))
            fine.append(_field_problem(name, text, value_of(name, text)).isNull())
    return (F.size(pieces) == F.col("_width")) & reduce(operator.and_, fine)


def _field(fields: Column, name: str) -> Column:
    return F.try_element_at(fields, F.col(f"_position_{name}"))


def file_headers(spark: SparkSession, files: list[RawFile]) -> list[FileHeader]:
    """The first line of each file, read on its own: numbering every line of a big file only to
    pick line 1 cost a pass over the whole file."""
    headers = []
    for f in files:
        first_block = spark.read.text(f.uri).where(F.col("_metadata.file_block_start") == 0)
        first = first_block.head(1)  # stops at the first row of the file's first block
        if first:
            headers.append(parse_header(f.source, first[0]["value"]))
    return headers


def _headers_frame(spark: SparkSession, headers: list[FileHeader]) -> DataFrame:
    header_schema = StructType(
        [
            StructField(schema.SOURCE_FILE, StringType(), False),
            StructField("_header", StringType()),
            StructField("_width", IntegerType()),
            # One column per order field rather than a map: a map lookup per field per line cost
            # more than the field's parse.
            *[StructField(f"_position_{name}", IntegerType()) for name in schema.ORDER_COLUMNS],
            StructField("_extra_names", ArrayType(StringType())),
            StructField("_extra_positions", ArrayType(IntegerType())),
            StructField("_missing", StringType()),
        ]
    )
    rows = [
        (
            h.source,
            h.text,
            len(h.columns),
            *[h.positions.get(name) for name in schema.ORDER_COLUMNS],
            [name for name, _ in h.extras],
            [pos for _, pos in h.extras],
            ", ".join(h.missing) or None,
        )
        for h in headers
    ]
    return spark.createDataFrame(rows, header_schema)


# What \s matches in a Java regular expression: both paths trim the same blanks.
_BLANKS = " \t\n\x0b\f\r"


def _unquote(field: Column) -> Column:
    trimmed = F.btrim(field, F.lit(_BLANKS))
    return F.when(
        trimmed.startswith('"'),
        F.replace(F.substring(trimmed, 2, F.length(trimmed) - 2), F.lit('""'), F.lit('"')),
    ).otherwise(trimmed)


def _quoted_fields(line: Column) -> Column:
    """The fields of a line holding a quote, unquoted (RFC 4180)."""
    return F.transform(F.regexp_extract_all(line, F.lit(CSV_FIELDS), F.lit(1)), _unquote)


# The usual shapes, "yyyy-MM-dd" and "yyyy-MM-dd HH:mm:ss" (or with a T), are parsed by a cast,
# cheaper than a pattern. On text of exactly that shape (digits where the pattern has digits) the
# cast accepts exactly what the patterns accept; any other text goes through the patterns, whose
# rules stay the contract (test_transforms compares the two paths).
_DATE_SHAPE = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TIMESTAMP_SHAPE = "^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}$"


def timestamp_of(text: Column) -> Column:
    return F.when(text.rlike(_TIMESTAMP_SHAPE), text.try_cast("timestamp")).otherwise(
        F.coalesce(*[F.try_to_timestamp(text, F.lit(fmt)) for fmt in TIMESTAMP_FORMATS])
    )


def date_of(text: Column) -> Column:
    return F.when(text.rlike(_DATE_SHAPE), text.try_cast("date")).otherwise(
        F.try_to_timestamp(text, F.lit(DATE_FORMAT)).cast("date")
    )


_PARSERS = {
    schema.ORDER_NUM: lambda text: text.try_cast("bigint"),
    schema.RECEIVED_DATE: date_of,
    schema.DELIVER_DATE: date_of,
    schema.LAST_UPDATE: timestamp_of,
}


def value_of(name: str, text: Column) -> Column:
    """A field's typed value from its trimmed text; NULL for an empty or unparseable text."""
    parse = _PARSERS.get(name)
    return parse(text) if parse else F.nullif(text, F.lit(""))


def _field_problem(name: str, text: Column, parsed: Column) -> Column:
    """Why a field of the contract is unusable, or NULL (free-text fields never are)."""
    if name in FREE_TEXT:
        return F.lit(None)
    empty = text.isNull() | (text == "")
    invalid = F.concat(F.lit(f"invalid {name}: '"), text, F.lit("'"))
    return F.when(empty, F.lit(f"empty {name}") if name in REQUIRED else F.lit(None)).when(
        parsed.isNull(), invalid
    )


def _lines_with_headers(
    spark: SparkSession, lines: DataFrame, headers: list[FileHeader]
) -> DataFrame:
    """The lines to classify (see classify_lines), each beside its file's header positions, with
    `_line` its text."""
    rows = lines.join(F.broadcast(_headers_frame(spark, headers)), schema.SOURCE_FILE, "left")
    # A byte-order mark is no part of a line's first field (parse_header drops it from the header).
    return rows.where((F.col(schema.SOURCE_LINE) > 1) | _header_lacks_columns()).withColumn(
        "_line", F.ltrim(F.col("value"), F.lit("\ufeff"))
    )


def _header_lacks_columns() -> Column:
    # Such a file has no usable line: its header line is kept and every line quarantined.
    return F.col("_missing").isNotNull()


def _with_fields(rows: DataFrame) -> DataFrame:
    """Adds `_quoted` and `_fields`, the line's fields (split pieces still untrimmed)."""
    # Without a quote character, RFC 4180 fields are exactly the comma-separated pieces: split and
    # trim them, several times cheaper than the regular expression, which only quoted lines need.
    line = F.col("_line")
    return rows.withColumn("_quoted", F.instr(line, '"') > 0).withColumn(
        "_fields", F.when(F.col("_quoted"), _quoted_fields(line)).otherwise(F.split(line, ",", -1))
    )


def _field_at(position: Column) -> Column:
    # Both paths give a field's text trimmed of the same blanks: _quoted_fields trims its fields,
    # a split piece is trimmed here, as it is read.
    field = F.try_element_at("_fields", position)
    return F.when(F.col("_quoted"), field).otherwise(F.btrim(field, F.lit(_BLANKS)))


def _text(name: str) -> Column:
    # Read back from its own projection (see _with_typed_fields), never computed again.
    return F.col(f"_text_{name}")


def _with_typed_fields(rows: DataFrame) -> DataFrame:
    """Adds each contract field's text (`_text_<name>`, where the header puts it) and its value."""
    # Each field's text, then its typed value, in projections of their own: written as one
    # expression tree, the text and the parse were repeated in the value, in the reason and in its
    # emptiness test, inside branches that Spark's common-subexpression pass does not share
    # (classifying a 1M-row day took 15 s; 6 s in layers).
    rows = rows.select(
        "*", *[_field_at(F.col(f"_position_{name}")).alias(f"_text_{name}") for name in schema.ORDER_COLUMNS]
    )
    return rows.select("*", *[value_of(name, _text(name)).alias(name) for name in schema.ORDER_COLUMNS])


def _line_problem() -> Column:
    """Why a line is no record of its file at all, or NULL; the first check that applies wins."""
    line = F.col("_line")
    return (
        F.when(_header_lacks_columns(), _missing_columns())
        .when(F.trim(line) == F.col("_header"), F.lit("repeated header line"))
        .when(~F.is_valid_utf8(line), F.lit("line is not valid UTF-8"))
        .when(
            F.col("_quoted") & ~line.rlike(CSV_LINE),
            F.lit("malformed CSV quoting (unterminated or stray quote)"),
        )
        .when(F.size("_fields") != F.col("_width"), _width_mismatch())
    )


def _missing_columns() -> Column:
    # The header line, quarantined with its file's lines, says so: it is the line to fix.
    return F.concat(
        F.lit("file header lacks required column(s): "),
        F.col("_missing"),
        F.when(F.col(schema.SOURCE_LINE) == 1, F.lit(" (this is the header line)")).otherwise(F.lit("")),
    )


def _width_mismatch() -> Column:
    # Both counts: the quarantine then says whether a line has fields missing or extra.
    return F.concat(
        F.lit("expected "),
        F.col("_width").cast("string"),
        F.lit(" fields, found "),
        F.size("_fields").cast("string"),
    )


def _fields_problems() -> Column:
    # Every unusable field at once, so one look at the quarantine shows all a line needs fixed.
    problems = [_field_problem(name, _text(name), F.col(name)) for name in schema.ORDER_COLUMNS]
    return F.nullif(F.concat_ws("; ", *problems), F.lit(""))


def _blank() -> Column:
    # Counted as blank rather than quarantined (see classify_lines).
    return F.trim(F.col("_line")) == ""


def _reason() -> Column:
    # A line's own problem hides its fields': they cannot be trusted to sit where the header says.
    return F.when(_blank(), F.lit(None)).otherwise(F.coalesce(_line_problem(), _fields_problems()))


def _rescued_data() -> Column:
    # Columns the contract does not know are kept as JSON by header name, not dropped.
    return F.when(
        F.size("_extra_positions") > 0,
        F.to_json(
            F.map_from_arrays(F.col("_extra_names"), F.transform("_extra_positions", _field_at))
        ),
    )


def classify_lines(
    spark: SparkSession, lines: DataFrame, headers: list[FileHeader], partition_date: str
) -> DataFrame:
    """Each line after the header, parsed and typed, with `reason` set when it must be quarantined.

    Blank lines get reason NULL and `_blank` true: they carry nothing to lose. The header line of a
    file whose header lacks a required column is kept too, so no byte of that file goes unreported.
    """
    rows = _lines_with_headers(spark, lines, headers)
    rows = _with_fields(rows)
    rows = _with_typed_fields(rows)
    return rows.select(
        *schema.ORDER_COLUMNS,
        _rescued_data().alias(schema.RESCUED_DATA),
        schema.SOURCE_FILE,
        schema.SOURCE_LINE,
        schema.LANDED_AT,
        F.lit(partition_date).cast("date").alias(schema.PARTITION_DATE),
        F.col("value").alias("raw_text"),
        _reason().alias("reason"),
        _blank().alias("_blank"),
    )
