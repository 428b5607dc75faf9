"""The operator's path in the Dagster UI, driven for real: `dagster dev` (webserver, daemon, code server)
on a free port with its own DAGSTER_HOME and the shipped dagster.yaml. Everything goes through
the webserver's GraphQL API, as the UI's buttons do, and one test loads the UI in Chromium.

The tests share one server and one backfill of the sample range (module fixtures); each asserts
one thing an operator relies on.
"""

from dataclasses import dataclass
from pathlib import Path

import pytest

from order_tracking.partitions import RANGE_END_TAG, RANGE_START_TAG
from order_tracking.sample_data import sample_files
from order_tracking_devtools.ui import (
    ASSETS,
    ASSET_NODES,
    CHECK_EXECUTIONS,
    MATERIALIZATIONS,
    SENSOR,
    SENSOR_SELECTOR,
    START_SENSOR,
    STOP_SENSOR,
    DagsterUI,
    chromium_path,
    open_asset_graph,
)
from order_tracking_devtools.dagster_processes import running_dagster_dev, shut_down
from order_tracking_devtools.gcs_emulator import free_port
from order_tracking_tests.helpers import at, business_rows, land, sample_days_oracle

DAYS = ["2023-01-01", "2023-01-02", "2023-01-03", "2023-01-04", "2023-01-05"]
BACKFILL_TIMEOUT_SECONDS = 900


@dataclass
class Served:
    ui: DagsterUI
    work: Path  # landing, lakehouse and DAGSTER_HOME of this server
    log: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    work = tmp_path_factory.mktemp("ui")
    for day, path in enumerate(sample_files(), start=1):
        land(work / "landing", path.name, path.read_bytes(), at(day))
    env = {
        "ORDER_TRACKING_LANDING_URI": str(work / "landing"),
        "ORDER_TRACKING_LAKEHOUSE_URI": str(work / "lakehouse"),
        "ORDER_TRACKING_DATA_DIR": str(work / "data"),
        "ORDER_TRACKING_SENSOR": "stopped",
    }
    port = free_port()
    log = work / "dagster_dev.log"
    with running_dagster_dev(work / "dagster_home", env, log, port) as process:
        client = DagsterUI(f"http://127.0.0.1:{port}")
        try:
            client.wait_until_ready(timeout=180, is_alive=lambda: process.poll() is None)
        except Exception:
            print(log.read_text()[-5000:])
            raise
        yield Served(client, work, log)
        # What Ctrl-C on `make dev` does: every process it started must be gone, none killed.
        assert shut_down(process), f"dagster dev did not shut down cleanly\n{log.read_text()[-3000:]}"
        assert process.returncode == 0


@pytest.fixture(scope="module")
def backfill(served):
    """The sample range backfilled as an operator does from the asset graph ("Materialize all",
    range 2023-01-01...2023-01-05)."""
    backfill_id = served.ui.launch_range_backfill(DAYS[0], DAYS[-1])
    return served.ui.wait_for_backfill(backfill_id, BACKFILL_TIMEOUT_SECONDS)


def test_the_asset_graph_describes_the_platform(served):
    nodes = {tuple(n["assetKey"]["path"]): n for n in served.ui.graphql(ASSET_NODES)["assetNodes"]}
    assert sorted(nodes) == sorted((a,) for a in ASSETS)
    upstream = {key[0]: [d["path"][0] for d in n["dependencyKeys"]] for key, n in nodes.items()}
    assert upstream == {"raw_order_files": [], "staged_orders": ["raw_order_files"], "order_tracking": ["staged_orders"]}
    for (name,), node in nodes.items():
        assert node["groupName"] == "order_tracking"
        assert node["description"] and "\n" not in node["description"], name
        assert node["owners"] == [{"team": "data-platform"}]
        assert {"spark", "delta"} <= set(node["kinds"])
        assert "dagster/code_references" in {m["label"] for m in node["metadataEntries"]}
        assert node["isPartitioned"] and node["partitionKeys"][:2] == ["2023-01-01", "2023-01-02"]
        assert node["backfillPolicy"]["policyType"] == "SINGLE_RUN"
    assert "gcs" in nodes[("raw_order_files",)]["kinds"]
    # One step materializes the three (one Databricks cluster per run): they share its pool.
    assert {tuple(node["pools"]) for node in nodes.values()} == {("order_tracking_writer",)}
    checks = {
        name: sorted(c["name"] for c in node["assetChecksOrError"]["checks"])
        for (name,), node in nodes.items()
    }
    assert checks == {
        "raw_order_files": ["day_file_arrived_by_deadline"],  # the arrival check, on its schedule
        "staged_orders": ["partition_has_no_quarantined_rows"],
        "order_tracking": ["status_is_known", "tracking_num_is_unique"],
    }


def test_a_range_backfill_builds_the_table_in_one_run(served, backfill, spark):
    assert backfill["status"] == "COMPLETED_SUCCESS", served.log.read_text()[-3000:]
    [run] = backfill["runs"]  # BackfillPolicy.single_run: the five days in one run
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert (tags[RANGE_START_TAG], tags[RANGE_END_TAG]) == (DAYS[0], DAYS[-1])
    table = spark.read.format("delta").load(str(served.work / "lakehouse" / "order_tracking"))
    assert business_rows(table) == sample_days_oracle(5)
    assert list((served.work / "landing").iterdir()) == []


def test_an_order_is_explained_from_the_launchpad(served, backfill):
    """explain_order_job launched as the Launchpad does; its Markdown is read back from the run."""
    config = {"ops": {"explain_order": {"config": {"tracking_num": "TRK1017"}}}}
    run_id = served.ui.launch_run("explain_order_job", config)
    assert served.ui.wait_for_run(run_id, timeout=300) == "SUCCESS", served.log.read_text()[-3000:]
    markdown = served.ui.output_metadata(run_id)["explanation"]
    assert markdown.startswith("# TRK1017\n")
    assert "**Current row**: Returned, last update 2023-01-05 23:17:40" in markdown
    # Five lines: one per day it was reported on, and day 4's line repeated in day 5's file.
    assert "## Lines received (5)" in markdown and "won: the current row" in markdown
    assert "lost a tie to order_tracking_2023_01_05.csv line 2 (Delivered)" in markdown


def materializations(ui, asset: str) -> dict[str, dict]:
    data = ui.graphql(MATERIALIZATIONS, path=[asset], partitions=DAYS)
    by_day = {}
    for event in data["assetOrError"]["assetMaterializations"]:
        entries = {m["label"]: m for m in event["metadataEntries"]}
        by_day[event["partition"]] = {"run": event["runId"], **entries}
    return by_day


def test_each_day_of_the_backfill_has_its_own_numbers(served, backfill):
    ui = served.ui
    [run_id] = [run["runId"] for run in backfill["runs"]]

    merged = materializations(ui, "order_tracking")
    staged = materializations(ui, "staged_orders")
    raw = materializations(ui, "raw_order_files")
    assert sorted(merged) == sorted(staged) == sorted(raw) == DAYS
    assert {m["run"] for by_day in (merged, staged, raw) for m in by_day.values()} == {run_id}
    assert [raw[d]["files_moved"]["intValue"] for d in DAYS] == [1] * 5
    # Plotted per partition in the Dagster UI: what each day's MERGE did, and the table's size after it.
    inserted = [merged[d]["inserted"]["intValue"] for d in DAYS]
    sizes = [merged[d]["dagster/row_count"]["intValue"] for d in DAYS]
    assert sizes == [sum(inserted[: i + 1]) for i in range(5)]
    assert sizes[-1] == len(sample_days_oracle(5))
    assert [merged[d]["source_rows"]["intValue"] for d in DAYS] == [
        staged[d]["rows_staged"]["intValue"] for d in DAYS
    ]
    columns = [c["name"] for c in merged[DAYS[0]]["dagster/column_schema"]["schema"]["columns"]]
    assert columns[:7] == [
        "order_num", "tracking_num", "pck_recieved_date", "package_deliver_date", "status",
        "address", "last_update_timestamp",
    ]
    assert merged[DAYS[0]]["table"]["path"].endswith("order_tracking")
    for asset, check in [
        ("order_tracking", "tracking_num_is_unique"),
        ("order_tracking", "status_is_known"),
        ("staged_orders", "partition_has_no_quarantined_rows"),
    ]:
        executions = ui.graphql(CHECK_EXECUTIONS, path=[asset], name=check)["assetCheckExecutions"]
        evaluated = [e for e in executions if e["runId"] == run_id and e["evaluation"]]
        assert [e["evaluation"]["success"] for e in evaluated] == [True], (check, executions)


def test_the_sensor_can_be_started_and_stopped(served):
    ui = served.ui

    def status():
        return ui.graphql(SENSOR, selector=SENSOR_SELECTOR)["sensorOrError"]

    assert status()["sensorState"]["status"] == "STOPPED"
    started = ui.graphql(START_SENSOR, selector=SENSOR_SELECTOR)["startSensor"]
    assert started["sensorState"]["status"] == "RUNNING", started
    assert status()["sensorState"]["status"] == "RUNNING"

    stopped = ui.graphql(STOP_SENSOR, id=status()["id"])["stopSensor"]
    assert stopped["instigationState"]["status"] == "STOPPED", stopped
    assert status()["sensorState"]["status"] == "STOPPED"


def test_the_browser_renders_the_asset_graph(served, backfill, tmp_path):
    assert chromium_path(), "Chromium is missing: `make test` installs Debian's chromium package"
    screenshot = tmp_path / "asset_graph.png"

    nodes = open_asset_graph(served.ui.url, screenshot)

    assert list(nodes) == ASSETS
    # Drawn from live data: the backfill's check results on the nodes that have checks.
    assert "1 / 1 Passed" in nodes["staged_orders"], nodes
    assert "2 / 2 Passed" in nodes["order_tracking"], nodes
    assert screenshot.stat().st_size > 10_000
    print(f"screenshot: {screenshot}")


# Last in the module: it undoes the backfill (and rebuilds it), so it runs after the tests that read it.
def test_the_backfill_is_undone_and_rebuilt_from_the_launchpad(served, backfill, spark):
    """undo_run_job and rebuild_job launched as the Launchpad does, on the five sample days: the
    undo takes the backfill's five MERGEs away and logs it; the rebuild stages the range again
    from the raw zone and gives back the oracle's table."""
    [backfill_run] = [run["runId"] for run in backfill["runs"]]
    lakehouse = served.work / "lakehouse"
    table = lambda: spark.read.format("delta").load(str(lakehouse / "order_tracking"))  # noqa: E731

    undo_config = {"ops": {"undo_run_merges": {"config": {"run_id": backfill_run}}}}
    undo = served.ui.launch_run("undo_run_job", undo_config)
    assert served.ui.wait_for_run(undo, timeout=300) == "SUCCESS", served.log.read_text()[-3000:]
    undone = served.ui.output_metadata(undo)
    assert (undone["undone_run_id"], undone["days"]) == (backfill_run, ", ".join(DAYS))
    assert (undone["rows_before"], undone["rows_after"]) == (len(sample_days_oracle(5)), 0)
    assert table().count() == 0  # the table as it was before the backfill's first MERGE
    [logged] = spark.read.format("delta").load(str(lakehouse / "order_tracking_undo_log")).collect()
    assert (logged.undone_run_id, logged.undone_by) == (backfill_run, f"run:{undo}")

    rebuild_config = {"ops": {"rebuild_from_raw_zone": {"config": {"first_day": DAYS[0], "last_day": DAYS[-1]}}}}
    rebuilt = served.ui.launch_run("rebuild_job", rebuild_config)
    assert served.ui.wait_for_run(rebuilt, timeout=300) == "SUCCESS", served.log.read_text()[-3000:]
    report = served.ui.output_metadata(rebuilt)
    assert (report["days_restaged"], report["order_tracking_rows_after"]) == (", ".join(DAYS), len(sample_days_oracle(5)))
    assert business_rows(table()) == sample_days_oracle(5)
    # The raw zone kept every file: each day's one sample file, byte for byte.
    raw = sorted((lakehouse / "raw").rglob("*.csv"))
    assert [p.read_bytes() for p in raw] == [p.read_bytes() for p in sample_files()]
