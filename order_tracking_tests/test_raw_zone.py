"""raw_order_files: landed bytes kept exactly, every version recorded once, landing left tidy.

Runs the asset through dagster.materialize on local folders; no staging or merging.
"""

import hashlib

import pytest

from order_tracking.raw_zone import raw_path
from order_tracking.delta import latest_version
from order_tracking_tests.helpers import GOOD_LINE, HEADER, at, land, materializations, materialize_selected

DAY = "2023-01-05"


def run(resources):
    result = materialize_selected(["raw_order_files"], partition_key=DAY, resources=resources)
    assert result.success
    [materialization] = materializations(result, "raw_order_files")
    return {k: v.value for k, v in materialization.metadata.items()}


def ledger(spark, lakehouse_dir):
    return sorted(
        (r.asDict() for r in spark.read.format("delta").load(str(lakehouse_dir / "raw_file_ledger")).collect()),
        key=lambda r: (r["file_name"], r["version"]),
    )


def test_files_move_byte_for_byte_and_are_recorded(spark, local_resources, landing_dir, lakehouse_dir):
    content = f"\ufeff{HEADER}\r\n{GOOD_LINE}".encode()
    land(landing_dir, "orders_2023_01_05.csv", content, at(5, 9))
    land(landing_dir, "orders_2023_01_04.csv", f"{HEADER}\n", at(4))  # another day: stays

    meta = run(local_resources)

    assert (meta["files_moved"], meta["bytes_moved"]) == (1, len(content))
    assert (lakehouse_dir / "raw/dt=2023-01-05/orders_2023_01_05.csv").read_bytes() == content
    assert sorted(p.name for p in landing_dir.iterdir()) == ["orders_2023_01_04.csv"]
    [entry] = ledger(spark, lakehouse_dir)
    assert entry["file_name"] == "orders_2023_01_05.csv"
    assert entry["raw_path"] == "raw/dt=2023-01-05/orders_2023_01_05.csv"
    assert entry["md5"] == hashlib.md5(content).hexdigest()
    assert entry["size_bytes"] == len(content)
    assert entry["version"] == 1
    assert entry["landed_at"] == at(5, 9).replace(tzinfo=None)
    assert entry["run_id"]


def test_rerun_with_nothing_new_changes_nothing(spark, local_resources, landing_dir, lakehouse_dir):
    land(landing_dir, "orders_2023_01_05.csv", f"{HEADER}\n{GOOD_LINE}\n")
    run(local_resources)
    version = latest_version(spark, str(lakehouse_dir / "raw_file_ledger"))

    meta = run(local_resources)

    assert meta["files_moved"] == 0
    assert latest_version(spark, str(lakehouse_dir / "raw_file_ledger")) == version


def test_relanded_identical_file_is_harmless(spark, local_resources, landing_dir, lakehouse_dir):
    content = f"{HEADER}\n{GOOD_LINE}\n"
    land(landing_dir, "orders_2023_01_05.csv", content, at(5, 9))
    run(local_resources)
    land(landing_dir, "orders_2023_01_05.csv", content, at(5, 10))

    meta = run(local_resources)

    assert (meta["files_moved"], meta["replays_ignored"]) == (0, 1)
    assert len(ledger(spark, lakehouse_dir)) == 1
    assert list(landing_dir.iterdir()) == []


def test_same_name_with_new_bytes_is_a_new_version(spark, local_resources, landing_dir, lakehouse_dir):
    first, second = f"{HEADER}\n{GOOD_LINE}\n", f"{HEADER}\n{GOOD_LINE.replace('In Transit', 'Delivered')}\n"
    land(landing_dir, "orders_2023_01_05.csv", first, at(5, 9))
    run(local_resources)
    land(landing_dir, "orders_2023_01_05.csv", second, at(5, 10))

    meta = run(local_resources)

    assert meta["files_moved"] == 1
    entries = ledger(spark, lakehouse_dir)
    assert [(e["version"], e["raw_path"]) for e in entries] == [
        (1, "raw/dt=2023-01-05/orders_2023_01_05.csv"),
        (2, "raw/dt=2023-01-05/v2/orders_2023_01_05.csv"),
    ]
    assert (lakehouse_dir / entries[0]["raw_path"]).read_text() == first  # never overwritten
    assert (lakehouse_dir / entries[1]["raw_path"]).read_text() == second


def test_non_order_files_stay_in_landing(spark, local_resources, landing_dir):
    for name in ["_SUCCESS", "orders_2023_01_05.csv.tmp", ".orders_2023_01_05.csv", "notes_2023_01_05.txt"]:
        land(landing_dir, name, "x")

    meta = run(local_resources)

    assert meta["files_moved"] == 0
    assert len(list(landing_dir.iterdir())) == 4


def test_odd_names_are_flattened_into_the_raw_folder(spark, local_resources, landing_dir, lakehouse_dir):
    land(landing_dir, "sub dir/we;ird $(x) 2023-01-05.csv", f"{HEADER}\n{GOOD_LINE}\n")

    run(local_resources)

    [entry] = ledger(spark, lakehouse_dir)
    assert entry["file_name"] == "sub dir/we;ird $(x) 2023-01-05.csv"
    assert entry["raw_path"] == "raw/dt=2023-01-05/we_ird___x__2023-01-05.csv"
    assert (lakehouse_dir / entry["raw_path"]).is_file()


def test_names_that_flatten_alike_keep_their_own_bytes(spark, local_resources, landing_dir, lakehouse_dir):
    # All three flatten to a_b_2023-01-05.csv; none may overwrite or be taken for another.
    names = ["a b 2023-01-05.csv", "a_b 2023-01-05.csv", "in/a;b 2023-01-05.csv"]
    contents = {
        name: f"{HEADER}\n{GOOD_LINE.replace('TRK1000', f'TRK{index}')}\n".encode()
        for index, name in enumerate(names)
    }
    for index, name in enumerate(names):
        land(landing_dir, name, contents[name], at(5, index))

    meta = run(local_resources)

    assert meta["files_moved"] == 3
    entries = ledger(spark, lakehouse_dir)
    assert sorted(e["file_name"] for e in entries) == sorted(names)
    assert len({e["raw_path"] for e in entries}) == 3
    for entry in entries:
        assert (lakehouse_dir / entry["raw_path"]).read_bytes() == contents[entry["file_name"]]


@pytest.mark.parametrize(
    "name",
    ["../../etc/orders_2023_01_05.csv", "/abs/orders_2023_01_05.csv", "..", "a/..%2F..%2Forders.csv", ".hidden"],
)
def test_raw_paths_stay_inside_their_partition_folder(name):
    path = raw_path(DAY, name, 3)
    assert path.startswith("raw/dt=2023-01-05/v3/")
    leaf = path.removeprefix("raw/dt=2023-01-05/v3/")
    assert "/" not in leaf and not leaf.startswith(".") and leaf
