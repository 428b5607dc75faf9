"""Property: in whatever order files land, however often they are replayed or replaced, and in
whatever order days are (re)materialized, order_tracking, the status history and the daily status
mix equal a plain-Python oracle over the file versions received, and every landed byte is in the
raw zone or still waiting in landing; and a rebuild from the raw zone gives the same table and
history, leaving the raw zone and the ledger as they were.

Hypothesis draws a history of events (a file lands; a day is materialized). Each materialization
runs the same functions as the assets (land_day, stage_day, merge_day, rebuild_history)
on real Delta tables, without Dagster around them, to keep an example to seconds. The oracle
knows the rows it wrote, so it never parses CSV: it only applies the rule "per tracking_num,
greatest (last_update_timestamp, landing time, line)". Examples are few by default (each costs
~30 s of Spark jobs); `make test-thorough` (HYPOTHESIS_PROFILE=thorough) runs 200.
"""

import hashlib
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from order_tracking.raw_zone import read_ledger
from order_tracking.catalog import ORDER_STATUS_HISTORY, ORDER_TRACKING, RAW_FILE_LEDGER
from order_tracking.insights import compute_figures
from order_tracking.rebuild import rebuild
from order_tracking.schema import RUN_ID
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.landing import LandingZone
from order_tracking_tests.helpers import HEADER, business_rows, land, materialize_day

DAYS = ("2023-01-01", "2023-01-02")
NAMES = {  # two file names per day: a regular file and a late correction
    day: (f"order_tracking_{day.replace('-', '_')}.csv", f"late_{day.replace('-', '')}.csv")
    for day in DAYS
}
TRACKING_NUMS = ("TRK1", "TRK2")  # few, so days and files collide on them
STATUSES = ("Shipped", "In Transit", "Delivered")
FIRST_LANDING = datetime(2023, 1, 3, 6, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Row:
    tracking_num: str
    status: str
    hour: int  # last_update_timestamp on 2023-01-01; few values, so ties happen often

    def fields(self) -> tuple[str, ...]:
        number = self.tracking_num.removeprefix("TRK")
        timestamp = f"2023-01-01 {self.hour:02d}:00:00"
        # The address is quoted and holds a comma: the parser must still see seven fields.
        return (number, self.tracking_num, "2023-01-01", "", self.status, "1, Main St", timestamp)

    def line(self) -> str:
        values = list(self.fields())
        values[5] = f'"{values[5]}"'
        return ",".join(values)


@dataclass(frozen=True)
class Land:
    day: str
    name: str
    rows: tuple[Row, ...]
    with_bad_line: bool

    def content(self) -> str:
        lines = [HEADER, *(r.line() for r in self.rows)]
        if self.with_bad_line:  # quarantined, never in the table
            lines.insert(1, "not,an,order")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Materialize:
    day: str


@st.composite
def landings(draw, day: str) -> Land:
    """A file with rows for every tracking_num (one or two each, shuffled): every pair of files
    disagrees about some order, so the processing order always matters to a wrong merge."""
    file_rows = [
        Row(tracking_num, draw(st.sampled_from(STATUSES)), draw(st.integers(8, 10)))
        for tracking_num in TRACKING_NUMS
        for _ in range(draw(st.integers(1, 2)))
    ]
    return Land(
        day,
        draw(st.sampled_from(NAMES[day])),
        tuple(draw(st.permutations(file_rows))),
        draw(st.booleans()),
    )


@st.composite
def histories(draw) -> list:
    """2-5 landings covering both days (some replaying an earlier file byte for byte), with two
    materializations of days that have landed files, interleaved: arrival order, processing
    order and file days all disagree. (Two, not more: each costs ~13 s of Spark jobs.)"""
    events: list = []
    for index in range(draw(st.integers(2, 5))):
        earlier = [e for e in events if isinstance(e, Land)]
        if index >= 2 and draw(st.integers(0, 3)) == 0:
            events.append(draw(st.sampled_from(earlier)))  # a replayed file
        else:
            # The first two land on different days: every history spans both.
            day = DAYS[index] if index < 2 else draw(st.sampled_from(DAYS))
            events.append(draw(landings(day)))
    positions = sorted(draw(st.lists(st.integers(1, len(events)), min_size=2, max_size=2)))
    for offset, position in enumerate(positions):
        # Mostly a day with files waiting (a run with work to do), else a rerun of a landed day.
        before = events[: position + offset]
        landed = sorted({e.day for e in before if isinstance(e, Land)})
        waiting = [day for day in landed if _waits(before, day)]
        events.insert(position + offset, Materialize(draw(st.sampled_from(waiting or landed))))
    return events


def _waits(events: list, day: str) -> bool:
    """Has `day` a landing since its last materialization?"""
    for event in reversed(events):
        if event.day == day:
            return isinstance(event, Land)
    return False


class Oracle:
    """What the table must hold: per tracking_num, the greatest (timestamp, landing, line) over
    the file versions received. A version is received when its day is materialized while it waits
    in landing; the same name with the same bytes again is a replay and changes nothing."""

    def __init__(self):
        self.waiting: dict[str, tuple[Land, datetime]] = {}  # landing folder: name -> version
        self.received: dict[tuple[str, str], tuple[Land, datetime]] = {}

    def landed(self, event: Land, at: datetime) -> None:
        self.waiting[event.name] = (event, at)  # a new upload under a name replaces the old one

    def materialized(self, day: str) -> None:
        for name, (event, at) in list(self.waiting.items()):
            if event.day == day:
                self.received.setdefault((name, digest(event.content())), (event, at))
                del self.waiting[name]

    def events(self) -> dict[str, list[tuple[int, str]]]:
        """Per tracking_num, its (hour, status) reports in time order: one per hour, the
        later-landed file, then the later line, winning a tie."""
        best: dict[tuple[str, int], tuple] = {}
        for event, at in self.received.values():
            for line, row in enumerate(event.rows):
                key = (row.tracking_num, row.hour)
                if key not in best or (at, line) > best[key][0]:
                    best[key] = ((at, line), row.status)
        chains: dict[str, list[tuple[int, str]]] = {}
        for (tracking_num, hour), (_, status) in sorted(best.items()):
            chains.setdefault(tracking_num, []).append((hour, status))
        return chains

    def history(self) -> list[tuple]:
        """(tracking_num, status, from hour, to hour or None, reports) per version."""
        versions = []
        for tracking_num, reports in self.events().items():
            chain: list[list] = []
            for hour, status in reports:
                if chain and chain[-1][1] == status:
                    chain[-1][3] += 1
                else:
                    chain.append([tracking_num, status, hour, 1])
            for index, (key, status, start, count) in enumerate(chain):
                end = chain[index + 1][2] if index + 1 < len(chain) else None
                versions.append((key, status, start, end, count))
        return sorted(versions)

    def status_mix(self) -> dict[str, int]:
        """Every report is of 2023-01-01: at the end of each day, each order's last status."""
        mix: dict[str, int] = {}
        for reports in self.events().values():
            mix[reports[-1][1]] = mix.get(reports[-1][1], 0) + 1
        return mix

    def table(self) -> list[tuple]:
        best: dict[str, tuple] = {}
        for event, at in self.received.values():
            for line, row in enumerate(event.rows):
                key = (row.hour, at, line)
                if row.tracking_num not in best or key > best[row.tracking_num][0]:
                    best[row.tracking_num] = (key, row.fields())
        return sorted(
            tuple(value or None for value in fields) for _, fields in best.values()
        )


def without_run_id(spark, lakehouse, table) -> list[tuple]:
    rows = spark.read.format("delta").load(lakehouse.table_uri(table)).drop(RUN_ID).collect()
    return sorted(tuple(str(v) for v in row) for row in rows)


def digest(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def as_table_rows(rows: list[tuple]) -> list[tuple]:
    """The oracle's fields as the table shows them (order_num as a number, the timestamp as text)."""
    shown = []
    for order_num, tracking, received, delivered, status, address, timestamp in rows:
        shown.append((str(int(order_num)), tracking, received, delivered, status, address, timestamp))
    return sorted(shown)


# Always run, whatever Hypothesis draws: day 2 processed before day 1 (day 1 is older for TRK1,
# newer for TRK2), then day 2's file replayed.
DAY_2 = Land(DAYS[1], NAMES[DAYS[1]][0], (Row("TRK1", "Delivered", 10), Row("TRK2", "Shipped", 8)), False)
DAY_1 = Land(DAYS[0], NAMES[DAYS[0]][0], (Row("TRK1", "In Transit", 9), Row("TRK2", "In Transit", 9)), True)
OUT_OF_ORDER = [DAY_2, DAY_1, Materialize(DAYS[1]), Materialize(DAYS[0]), DAY_2, Materialize(DAYS[1])]


@example(history=OUT_OF_ORDER)
@settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories())
def test_the_table_is_the_newest_row_whatever_the_history(spark, tmp_path, history):
    work = Path(tempfile.mkdtemp(dir=tmp_path))  # tmp_path is shared by all examples
    landing = LandingZone(uri=str(work / "landing"))
    lakehouse = Lakehouse(uri=str(work / "lakehouse"))
    (work / "landing").mkdir()
    oracle = Oracle()

    for index, event in enumerate(history):
        if isinstance(event, Land):
            at = FIRST_LANDING + timedelta(minutes=index)
            land(work / "landing", event.name, event.content(), at)
            oracle.landed(event, at)
        else:
            materialize_day(spark, landing, lakehouse, event.day, history=True)
            oracle.materialized(event.day)

    table_uri = lakehouse.table_uri(ORDER_TRACKING)
    if oracle.received:
        table = spark.read.format("delta").load(table_uri)
        assert business_rows(table) == as_table_rows(oracle.table())
        history = spark.read.format("delta").load(lakehouse.table_uri(ORDER_STATUS_HISTORY)).collect()
        assert sorted(
            (
                r.tracking_num,
                r.status,
                r.valid_from.hour,
                r.valid_to.hour if r.valid_to else None,
                r.events,
            )
            for r in history
        ) == oracle.history()
        figures = compute_figures(spark, lakehouse, DAYS[0], DAYS[-1], kpis=False)
        assert [figures[day].status_mix for day in DAYS] == [oracle.status_mix()] * len(DAYS)
        # Rebuilt from the raw zone: exactly the incremental path's table and history, lineage
        # included (the run ids aside: restaged rows carry the rebuild's).
        incremental = [without_run_id(spark, lakehouse, t) for t in (ORDER_TRACKING, ORDER_STATUS_HISTORY)]
        rebuild(spark, lakehouse, DAYS[0], DAYS[-1], "rebuild")
        assert [without_run_id(spark, lakehouse, t) for t in (ORDER_TRACKING, ORDER_STATUS_HISTORY)] == incremental
    # Nothing lost: every received version is in the ledger exactly once, with its bytes in the
    # raw zone; every version still waiting is untouched in landing.
    ledger = [e for day in DAYS for e in read_ledger(spark, lakehouse.table_uri(RAW_FILE_LEDGER), day)]
    assert sorted((e.file_name, e.md5) for e in ledger) == sorted(oracle.received)
    for entry in ledger:
        assert digest((work / "lakehouse" / entry.raw_path).read_text()) == entry.md5
    waiting = {f.name: f for f in landing.list_files()}
    assert sorted(waiting) == sorted(oracle.waiting)
    for name, (event, _) in oracle.waiting.items():
        assert (work / "landing" / name).read_text() == event.content()

