"""Property: stray quotes never cost a valid line (issue #21).

Hypothesis writes order files of valid lines, genuine multi-line records (a quoted address that
holds line breaks), blank lines and lines with a quote character inserted: at the start of a field
(the quote never closes: a broken line) or inside a field (kept as text in a free-text field,
an invalid value in a typed one). The files go through the staging transforms (read, join
records, classify) exactly as in production; no Dagster, no Delta.

The expectation is known by construction, never by parsing CSV: every line valid on its own and
every genuine record is loaded with its values, at its first line; every broken line is
quarantined alone (its own text, its own line number); nothing else comes out. Examples run one
Spark pass each (a few seconds): at least 10 in the suite, more with HYPOTHESIS_PROFILE=thorough.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from order_tracking_tests.helpers import HEADER, classify_files

FREE_TEXT_FIELDS = (1, 4, 5)  # tracking_num, status, address: a quote inside is kept as text
STATUSES = ("In Transit", "Delayed", "Delivered")


@dataclass(frozen=True)
class Entry:
    """One record of a file: its text (one or more lines) and what staging must make of it."""

    text: str
    loaded: tuple | None  # (tracking_num, status, address) when it must be loaded, else None

    @property
    def broken(self) -> bool:
        return self.loaded is None and self.text.strip() != ""


def fields_of(n: int, status: str) -> list[str]:
    return [str(n), f"TRK{n}", "2024-05-01", "2024-05-06", status, f"{n} Main St", f"2024-05-02 10:{n % 60:02d}:00"]


@st.composite
def entries(draw, n: int) -> Entry:
    fields = fields_of(n, draw(st.sampled_from(STATUSES)))
    kind = draw(st.sampled_from(["valid", "valid", "quoted", "multi-line", "blank", "stray", "stray", "stray"]))
    if kind == "valid":
        return Entry(",".join(fields), (fields[1], fields[4], fields[5]))
    if kind == "quoted":  # a comma and doubled quotes inside a quoted address, on one line
        address = f'{n} Main St, "rear"'
        text = ",".join(fields[:5] + ['"' + address.replace('"', '""') + '"'] + fields[6:])
        return Entry(text, (fields[1], fields[4], address))
    if kind == "multi-line":
        parts = [f"Hof {n}"] + [f"Straße {n}, Etage {k}" for k in range(draw(st.integers(1, 3)))]
        address = "\n".join(parts)
        text = ",".join(fields[:5] + [f'"{address}"'] + fields[6:])
        return Entry(text, (fields[1], fields[4], address))
    if kind == "blank":
        return Entry("", None)
    index = draw(st.integers(0, len(fields) - 1))
    value = fields[index]
    at = draw(st.integers(0, len(value)))
    fields[index] = value[:at] + '"' + value[at:]
    text = ",".join(fields)
    if at > 0 and index in FREE_TEXT_FIELDS:
        return Entry(text, (fields[1], fields[4], fields[5]))
    return Entry(text, None)  # an unclosed quote, or a quote in a number, date or timestamp


@st.composite
def order_files(draw) -> dict[str, list[Entry]]:
    files, n = {}, 0
    for name in ("a.csv", "b.csv")[: draw(st.integers(1, 2))]:
        records = []
        for _ in range(draw(st.integers(1, 30))):
            n += 1
            records.append(draw(entries(n)))
        files[name] = records
    return files


def expected(files: dict[str, list[Entry]]) -> tuple[list, list]:
    """(loaded: (file, first line, values), quarantined: (file, line, text)) by construction."""
    loaded, broken = [], []
    for name, records in files.items():
        line = 2  # line 1 is the header
        for entry in records:
            if entry.loaded:
                loaded.append((name, line, entry.loaded))
            elif entry.broken:
                broken.append((name, line, entry.text))
            line += entry.text.count("\n") + 1
    return sorted(loaded), sorted(broken)


@settings(
    max_examples=max(10, settings().max_examples),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(files=order_files())
def test_stray_quotes_cost_no_valid_line(spark, tmp_path, files):
    folder = Path(tempfile.mkdtemp(dir=tmp_path))  # tmp_path is shared by all examples
    contents = {
        name: "\n".join([HEADER, *(entry.text for entry in records)]) + "\n"
        for name, records in files.items()
    }

    rows = classify_files(spark, folder, contents, partition="2024-05-02")

    loaded = sorted(
        (r["_source_file"], r["_source_line"], (r["tracking_num"], r["status"], r["address"]))
        for r in rows
        if r["reason"] is None and not r["_blank"]
    )
    quarantined = sorted(
        (r["_source_file"], r["_source_line"], r["raw_text"]) for r in rows if r["reason"] is not None
    )
    assert (loaded, quarantined) == expected(files)
