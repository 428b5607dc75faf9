"""What real order files look like, through the staging transforms: one test per tolerance.

Files are written to disk and read by Spark exactly as in production; no Dagster here.
"""

import gzip
import json
from datetime import date, datetime

import pytest

from order_tracking_tests.helpers import HEADER, classify_files, order_line, stray_quotes_day

pytestmark = pytest.mark.quick  # the inner loop: make check

GOOD = "1000,TRK1000,2023-01-05,2023-01-07,In Transit,1 Main St,2023-01-05 10:00:00"


def valid(rows):
    return [r for r in rows if r["reason"] is None and not r["_blank"]]


def quarantined(rows):
    return [r for r in rows if r["reason"] is not None]


def test_well_formed_line_is_typed(spark, tmp_path):
    [row] = classify_files(spark, tmp_path, {"a.csv": f"{HEADER}\n{GOOD}\n"})
    assert row["reason"] is None
    assert row["order_num"] == 1000
    assert row["tracking_num"] == "TRK1000"
    assert row["pck_recieved_date"] == date(2023, 1, 5)
    assert row["package_deliver_date"] == date(2023, 1, 7)
    assert row["last_update_timestamp"] == datetime(2023, 1, 5, 10, 0, 0)
    assert (row["_source_file"], row["_source_line"]) == ("a.csv", 2)
    assert row["_rescued_data"] is None


def test_utf8_bom_is_ignored(spark, tmp_path):
    rows = classify_files(spark, tmp_path, {"a.csv": f"\ufeff{HEADER}\n{GOOD}\n".encode("utf-8")})
    assert [r["tracking_num"] for r in valid(rows)] == ["TRK1000"]


def test_crlf_line_endings(spark, tmp_path):
    rows = classify_files(spark, tmp_path, {"a.csv": f"{HEADER}\r\n{GOOD}\r\n"})
    [row] = valid(rows)
    assert row["last_update_timestamp"] == datetime(2023, 1, 5, 10, 0, 0)
    assert not row["raw_text"].endswith("\r")


def test_missing_final_newline(spark, tmp_path):
    second = GOOD.replace("TRK1000", "TRK1001")
    rows = classify_files(spark, tmp_path, {"a.csv": f"{HEADER}\n{GOOD}\n{second}"})
    assert [r["tracking_num"] for r in valid(rows)] == ["TRK1000", "TRK1001"]


def test_quoted_fields_with_commas_quotes_and_non_ascii_text(spark, tmp_path):
    line = '1000,TRK1000,2023-01-05,,"Delayed, ""weather""","Straße 5, München",2023-01-05 10:00:00'
    [row] = classify_files(spark, tmp_path, {"a.csv": f"{HEADER}\n{line}\n"})
    assert row["reason"] is None
    assert row["status"] == 'Delayed, "weather"'
    assert row["address"] == "Straße 5, München"
    assert row["package_deliver_date"] is None


def test_newline_inside_a_quoted_field_is_read_exactly(spark, tmp_path):
    record = '1000,TRK1000,2023-01-05,,In Transit,"Hof 2\nStraße 5, ""rear""",2023-01-05 10:00:00'
    after = GOOD.replace("TRK1000", "TRK1001")
    rows = classify_files(spark, tmp_path, {"a.csv": f"{HEADER}\n{record}\n{after}\n"})
    first, second = valid(rows)
    assert first["address"] == 'Hof 2\nStraße 5, "rear"'
    assert (first["_source_line"], first["raw_text"]) == (2, record)
    assert (second["tracking_num"], second["_source_line"]) == ("TRK1001", 4)


def test_a_stray_quote_swallows_no_following_line(spark, tmp_path):
    # A quote inside an unquoted field is tolerated; it must not open a multi-line record.
    stray = GOOD.replace("1 Main St", '5" box')
    good = [GOOD.replace("TRK1000", f"TRK{n}") for n in range(1001, 1004)]
    rows = classify_files(spark, tmp_path, {"a.csv": "\n".join([HEADER, stray, *good]) + "\n"})
    assert [(r["tracking_num"], r["_source_line"]) for r in valid(rows)] == [
        ("TRK1000", 2), ("TRK1001", 3), ("TRK1002", 4), ("TRK1003", 5)
    ]
    assert valid(rows)[0]["address"] == '5" box'


def test_a_quote_left_open_past_the_record_limit_is_not_joined(spark, tmp_path):
    from order_tracking.transforms.parse import MAX_RECORD_LINES

    opened = GOOD.replace("1 Main St", '"1 Main St')
    good = [GOOD.replace("TRK1000", f"TRK{2000 + n}") for n in range(MAX_RECORD_LINES)]
    closing = GOOD.replace("TRK1000", "TRK9999").replace("1 Main St", 'x"')
    content = "\n".join([HEADER, opened, *good, closing]) + "\n"
    rows = classify_files(spark, tmp_path, {"a.csv": content})
    assert len(valid(rows)) == MAX_RECORD_LINES + 1
    [bad] = quarantined(rows)
    assert bad["_source_line"] == 2 and "quoting" in bad["reason"]


def test_whitespace_around_values_is_trimmed(spark, tmp_path):
    line = " 1000 , TRK1000 ,2023-01-05, 2023-01-07 , In Transit , \"1 Main St\" , 2023-01-05 10:00:00 "
    [row] = classify_files(spark, tmp_path, {"a.csv": f"{HEADER}\n{line}\n"})
    assert row["reason"] is None
    assert (row["order_num"], row["tracking_num"], row["status"], row["address"]) == (
        1000, "TRK1000", "In Transit", "1 Main St"
    )


def test_columns_in_any_order_and_unknown_columns_rescued(spark, tmp_path):
    header = "carrier,last_update_timestamp,status,tracking_num,address,order_num,package_deliver_date,pck_recieved_date,note"
    line = 'UPS,2023-01-05 10:00:00,Delivered,TRK7,"9 Elm St",7,2023-01-06,2023-01-05,"fragile, ""glass"""'
    [row] = classify_files(spark, tmp_path, {"a.csv": f"{header}\n{line}\n"})
    assert row["reason"] is None
    assert (row["order_num"], row["tracking_num"], row["status"], row["address"]) == (
        7, "TRK7", "Delivered", "9 Elm St"
    )
    assert json.loads(row["_rescued_data"]) == {"carrier": "UPS", "note": 'fragile, "glass"'}


def test_file_missing_a_required_column_is_quarantined_whole(spark, tmp_path):
    header = HEADER.replace(",address", "")
    line = GOOD.replace(",1 Main St", "")
    rows = classify_files(
        spark, tmp_path, {"bad.csv": f"{header}\n{line}\n{line}\n", "good.csv": f"{HEADER}\n{GOOD}\n"}
    )
    bad = [r for r in rows if r["_source_file"] == "bad.csv"]
    assert [r["_source_line"] for r in bad] == [1, 2, 3]  # the header too: nothing unreported
    assert all(r["reason"].startswith("file header lacks required column(s): address") for r in bad)
    assert [r["_source_file"] for r in valid(rows)] == ["good.csv"]


MALFORMED = {
    "bad-int": (GOOD.replace("1000,", "10x0,", 1), "invalid order_num: '10x0'"),
    "bad-date": (GOOD.replace("2023-01-07", "2023-13-07"), "invalid package_deliver_date: '2023-13-07'"),
    "foreign-date-format": (GOOD.replace("2023-01-05,", "05/01/2023,", 1), "invalid pck_recieved_date: '05/01/2023'"),
    "bad-timestamp": (GOOD.replace("2023-01-05 10:00:00", "yesterday"), "invalid last_update_timestamp: 'yesterday'"),
    "empty-timestamp": (GOOD.replace(",2023-01-05 10:00:00", ","), "empty last_update_timestamp"),
    "empty-tracking-num": (GOOD.replace("TRK1000", ""), "empty tracking_num"),
    "blank-tracking-num": (GOOD.replace("TRK1000", "   "), "empty tracking_num"),
    "too-few-fields": (GOOD.rsplit(",", 1)[0], "expected 7 fields, found 6"),
    "too-many-fields": (GOOD + ",extra", "expected 7 fields, found 8"),
    "unterminated-quote": (GOOD.replace("In Transit", '"In Transit'), "malformed CSV quoting"),
    "stray-quote-after-quoted-field": (GOOD.replace("In Transit", '"In" Transit'), "malformed CSV quoting"),
    "repeated-header": (HEADER, "repeated header line"),
}


@pytest.fixture(scope="module")
def malformed_file_rows(spark, tmp_path_factory):
    """One file holding a good line and then every malformed case, parsed once for all cases."""
    lines = [HEADER, GOOD] + [line for line, _ in MALFORMED.values()]
    rows = classify_files(spark, tmp_path_factory.mktemp("malformed"), {"a.csv": "\n".join(lines) + "\n"})
    return {r["_source_line"]: r for r in rows}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_line_is_quarantined_with_its_reason(malformed_file_rows, case):
    line_number = 3 + list(MALFORMED).index(case)
    line, reason = MALFORMED[case]
    row = malformed_file_rows[line_number]
    assert row["reason"] is not None and row["reason"].startswith(reason)
    assert (row["_source_file"], row["raw_text"]) == ("a.csv", line)


def test_only_the_malformed_lines_are_quarantined(malformed_file_rows):
    assert [r["tracking_num"] for r in valid(malformed_file_rows.values())] == ["TRK1000"]
    assert len(quarantined(malformed_file_rows.values())) == len(MALFORMED)


def test_several_problems_on_one_line_are_all_named(spark, tmp_path):
    line = "x,TRK1,2023-99-01,,Delivered,1 Main St,never"
    [bad] = classify_files(spark, tmp_path, {"a.csv": f"{HEADER}\n{line}\n"})
    assert bad["reason"] == (
        "invalid order_num: 'x'; invalid pck_recieved_date: '2023-99-01'; "
        "invalid last_update_timestamp: 'never'"
    )


def test_bytes_that_are_not_utf8_quarantine_only_their_line(spark, tmp_path):
    content = f"{HEADER}\n{GOOD}\n".encode() + b"1001,TRK1001,,,In Transit,Stra\xdfe 5,2023-01-05 11:00:00\n"
    rows = classify_files(spark, tmp_path, {"a.csv": content})
    [bad] = quarantined(rows)
    assert (bad["_source_line"], bad["reason"]) == (3, "line is not valid UTF-8")
    assert len(valid(rows)) == 1


def test_blank_lines_are_skipped_not_quarantined(spark, tmp_path):
    rows = classify_files(spark, tmp_path, {"a.csv": f"{HEADER}\n\n{GOOD}\n   \n"})
    assert quarantined(rows) == []
    assert [r["_source_line"] for r in rows if r["_blank"]] == [2, 4]
    assert [r["_source_line"] for r in valid(rows)] == [3]


def test_gzipped_file_reads_like_the_plain_file(spark, tmp_path):
    text = f"{HEADER}\n{GOOD}\n"
    plain = classify_files(spark, tmp_path / "plain", {"a.csv": text})
    zipped = classify_files(spark, tmp_path / "gz", {"a.csv.gz": gzip.compress(text.encode())})
    strip = lambda rows: [{k: v for k, v in r.items() if k != "_source_file"} for r in rows]  # noqa: E731
    assert strip(plain) == strip(zipped)


@pytest.mark.parametrize("content", [b"", HEADER.encode(), f"{HEADER}\n".encode()], ids=["0-byte", "header-only", "header-newline"])
def test_empty_files_give_no_rows(spark, tmp_path, content):
    assert classify_files(spark, tmp_path, {"a.csv": content}) == []


# Stray quotes (issue #21). An odd-quoted line and the next one are joined only when they make a
# genuine record; otherwise each broken line is quarantined alone and every valid line between
# them is read on its own.


def order_file(lines: list[str]) -> str:
    return "\n".join([HEADER, *lines]) + "\n"


def line_numbers(rows) -> tuple[list[int], list[int]]:
    """(lines loaded, lines quarantined), by their line in the file."""
    return [r["_source_line"] for r in valid(rows)], [r["_source_line"] for r in quarantined(rows)]


def test_two_stray_quotes_far_apart_cost_no_valid_line(spark, tmp_path):
    # The reported file: the two broken lines used to be joined into one 32-line "record".
    text, broken = stray_quotes_day()

    rows = classify_files(spark, tmp_path, {"a.csv": text}, partition="2024-05-02")

    assert sorted(r["tracking_num"] for r in valid(rows)) == sorted(f"TRK{n}" for n in range(1, 51))
    assert [(r["_source_line"], r["raw_text"]) for r in quarantined(rows)] == [
        (12, broken[0]), (43, broken[1])
    ]
    assert all(r["reason"] == "malformed CSV quoting (unterminated or stray quote)" for r in quarantined(rows))


@pytest.mark.parametrize(
    "stray_at", [0, 2, 3], ids=["stray-before-the-record", "stray-right-after-it", "stray-after-a-line"]
)
def test_a_genuine_multi_line_address_next_to_a_stray_quote(spark, tmp_path, stray_at):
    record = order_line(2, address='"Hof 2\nStraße 5"')
    lines = [order_line(1), record, order_line(3), order_line(4)]
    stray = order_line(9, address='"9 Pine St')
    lines.insert(stray_at + 1, stray)
    text = order_file(lines)

    rows = classify_files(spark, tmp_path, {"a.csv": text}, partition="2024-05-02")

    [joined] = [r for r in valid(rows) if r["tracking_num"] == "TRK2"]
    assert joined["address"] == "Hof 2\nStraße 5"
    assert joined["raw_text"] == record
    assert sorted(r["tracking_num"] for r in valid(rows)) == ["TRK1", "TRK2", "TRK3", "TRK4"]
    [bad] = quarantined(rows)
    assert bad["raw_text"] == stray
    assert bad["_source_line"] == text.split("\n").index(stray.split("\n")[0]) + 1


def test_stray_quotes_on_the_first_and_the_last_line(spark, tmp_path):
    lines = [order_line(n) for n in range(1, 6)]
    lines[0] = order_line(1, status='"In Transit')
    lines[-1] = order_line(5, address='"5 Main St')

    rows = classify_files(spark, tmp_path, {"a.csv": order_file(lines)}, partition="2024-05-02")

    assert line_numbers(rows) == ([3, 4, 5], [2, 6])


def test_three_stray_quotes(spark, tmp_path):
    lines = [order_line(n) for n in range(1, 11)]
    lines[1] = order_line(2, address='"2 Main St')
    lines[4] = order_line(5, status='"Delayed')
    lines[8] = order_line(9, updated='"2024-05-02 11:00:00')

    rows = classify_files(spark, tmp_path, {"a.csv": order_file(lines)}, partition="2024-05-02")

    assert line_numbers(rows) == ([2, 4, 5, 7, 8, 9, 11], [3, 6, 10])


def test_two_stray_quotes_that_would_make_a_well_formed_record_stay_apart(spark, tmp_path):
    # Joined, these two read as one record of seven fields whose address holds a line break; but
    # each is a whole record once its quote is dropped: two stray quotes, not one record.
    opened = order_line(1, address='"1 Main St')
    closed = order_line(2, address='2 Main St"')

    rows = classify_files(spark, tmp_path, {"a.csv": order_file([opened, closed])}, partition="2024-05-02")

    # A quote inside an unquoted value is kept as text (the second line); the first never closes.
    assert [(r["_source_line"], r["address"]) for r in valid(rows)] == [(3, '2 Main St"')]
    assert [r["_source_line"] for r in quarantined(rows)] == [2]


def test_a_quote_that_would_close_inside_a_timestamp_joins_no_line(spark, tmp_path):
    # Neither end is a record on its own, yet a timestamp never spans lines: a valid line between
    # them is read on its own, and each end is quarantined for what it is.
    opened = '1,TRK1,2024-05-01,2024-05-06,Delayed,1 Main St,"2024-05-02'
    closed = '23:58:00"'
    lines = [opened, order_line(2), closed]

    rows = classify_files(spark, tmp_path, {"a.csv": order_file(lines)}, partition="2024-05-02")

    assert line_numbers(rows) == ([3], [2, 4])
    reasons = {r["_source_line"]: r["reason"] for r in quarantined(rows)}
    assert reasons == {2: "malformed CSV quoting (unterminated or stray quote)", 4: "expected 7 fields, found 1"}


def test_each_line_between_stray_quotes_keeps_its_own_reason(spark, tmp_path):
    lines = [order_line(n).encode() for n in range(1, 8)]
    lines[0] = order_line(1, address='"1 Main St').encode()
    lines[3] = order_line(4, address="Stra\xdfe 4").encode("latin-1")
    lines[6] = order_line(7, address='"7 Main St').encode()
    content = b"\n".join([HEADER.encode(), *lines]) + b"\n"

    rows = classify_files(spark, tmp_path, {"a.csv": content}, partition="2024-05-02")

    reasons = {r["_source_line"]: r["reason"] for r in quarantined(rows)}
    assert reasons == {
        2: "malformed CSV quoting (unterminated or stray quote)",
        5: "line is not valid UTF-8",
        8: "malformed CSV quoting (unterminated or stray quote)",
    }
    assert [r["_source_line"] for r in valid(rows)] == [3, 4, 6, 7]
