"""Talking to a running Dagster UI (dagster-webserver, once called Dagit) the way a browser does: GraphQL over HTTP, and a real Chromium page."""

import json
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect, sync_playwright

from order_tracking.assets.pipeline import DAILY_ASSETS

ASSETS = DAILY_ASSETS
LOCATION = "order_tracking"
SENSOR_SELECTOR = {
    "repositoryLocationName": LOCATION,
    "repositoryName": "__repository__",
    "sensorName": "order_files_sensor",
}
FINAL_BACKFILL_STATUSES = {"COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
# Where the Dagster UI draws the asset graph of our group.
ASSET_GRAPH_PATH = f"/locations/{LOCATION}/asset-groups/order_tracking/lineage"


class GraphQLError(Exception):
    pass


@dataclass
class DagsterUI:
    url: str

    def graphql(self, query: str, **variables) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.load(response)
        if body.get("errors"):
            raise GraphQLError(json.dumps(body["errors"])[:2000])
        return body["data"]

    def wait_until_ready(self, timeout: float, is_alive) -> None:
        """Until the webserver answers, our code location is loaded and the daemons that
        backfills and sensors need report healthy."""
        deadline, last = time.monotonic() + timeout, "no answer yet"
        while time.monotonic() < deadline:
            if not is_alive():
                raise RuntimeError("dagster dev exited while starting")
            try:
                data = self.graphql(READINESS)
            except (urllib.error.URLError, ConnectionError, GraphQLError) as error:
                last = repr(error)
            else:
                [entry] = data["workspaceOrError"]["locationEntries"]
                healthy = {
                    d["daemonType"]
                    for d in data["instance"]["daemonHealth"]["allDaemonStatuses"]
                    if d["healthy"]
                }
                last = f"location {entry['loadStatus']}, healthy daemons {sorted(healthy)}"
                if entry["loadStatus"] == "LOADED" and {"BACKFILL", "SENSOR", "QUEUED_RUN_COORDINATOR"} <= healthy:
                    return
            time.sleep(1)
        raise TimeoutError(f"the Dagster UI is not ready after {timeout} s: {last}")

    def launch_range_backfill(self, first: str, last: str) -> str:
        partitions = {"range": {"start": first, "end": last}}
        params = {
            "partitionsByAssets": [{"assetKey": {"path": [a]}, "partitions": partitions} for a in ASSETS]
        }
        result = self.graphql(LAUNCH_BACKFILL, params=params)["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise GraphQLError(json.dumps(result))
        return result["backfillId"]

    def wait_for_backfill(self, backfill_id: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            backfill = self.graphql(BACKFILL, id=backfill_id)["partitionBackfillOrError"]
            if backfill["status"] in FINAL_BACKFILL_STATUSES:
                return backfill
            time.sleep(3)
        raise TimeoutError(f"backfill {backfill_id} not finished after {timeout} s: {backfill}")


    def launch_run(self, job: str, run_config: dict) -> str:
        """A job launched as the UI's Launchpad does; returns the run id."""
        params = {
            "selector": {
                "repositoryLocationName": "order_tracking",
                "repositoryName": "__repository__",
                "jobName": job,
            },
            "runConfigData": run_config,
        }
        result = self.graphql(LAUNCH_RUN, params=params)["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise GraphQLError(json.dumps(result))
        return result["run"]["runId"]

    def wait_for_run(self, run_id: str, timeout: float) -> str:
        """The run's final status."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.graphql(RUN_STATUS, id=run_id)["runOrError"]["status"]
            if status in FINAL_RUN_STATUSES:
                return status
            time.sleep(1)
        raise TimeoutError(f"run {run_id} not finished after {timeout} s: {status}")

    def output_metadata(self, run_id: str) -> dict[str, str | int | bool]:
        """The metadata of the run's step outputs, by label (what the run page shows): Markdown,
        text, integers and booleans, as their values."""
        events = self.graphql(RUN_EVENTS, id=run_id)["logsForRun"]["events"]
        return {
            entry["label"]: next(entry[k] for k in VALUE_FIELDS if k in entry)
            for event in events
            if event["__typename"] == "ExecutionStepOutputEvent"
            for entry in event["metadataEntries"]
            if entry.keys() & set(VALUE_FIELDS)
        }


VALUE_FIELDS = ("mdStr", "text", "intValue", "boolValue")
FINAL_RUN_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}

LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}
"""

RUN_STATUS = """
query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }
"""

RUN_EVENTS = """
query($id: ID!) {
  logsForRun(runId: $id) {
    ... on EventConnection {
      events {
        __typename
        ... on ExecutionStepOutputEvent {
          metadataEntries {
            label
            ... on MarkdownMetadataEntry { mdStr }
            ... on TextMetadataEntry { text }
            ... on IntMetadataEntry { intValue }
            ... on BoolMetadataEntry { boolValue }
          }
        }
      }
    }
  }
}
"""

READINESS = """
{
  workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } }
  instance { daemonHealth { allDaemonStatuses { daemonType healthy } } }
}
"""

ASSET_NODES = """
{
  assetNodes(group: {groupName: "order_tracking", repositoryName: "__repository__",
                     repositoryLocationName: "order_tracking"}) {
    assetKey { path }
    description
    groupName
    kinds
    owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
    dependencyKeys { path }
    isPartitioned
    partitionDefinition { description }
    partitionKeys
    backfillPolicy { policyType }
    pools
    metadataEntries { label }
    assetChecksOrError { ... on AssetChecks { checks { name description } } }
    partitionStats { numMaterialized numFailed }
  }
}
"""

LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}
"""

BACKFILL = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status numPartitions runs { runId status tags { key value } } }
    ... on PythonError { message }
  }
}
"""

MATERIALIZATIONS = """
query($path: [String!]!, $partitions: [String!]) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset {
      assetMaterializations(partitions: $partitions) {
        partition
        runId
        metadataEntries {
          label
          ... on IntMetadataEntry { intValue }
          ... on PathMetadataEntry { path }
          ... on TableSchemaMetadataEntry { schema { columns { name type } } }
        }
      }
    }
  }
}
"""

CHECK_EXECUTIONS = """
query($path: [String!]!, $name: String!) {
  assetCheckExecutions(assetKey: {path: $path}, checkName: $name, limit: 5) {
    runId
    status
    evaluation { success severity }
  }
}
"""

SENSOR = """
query($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    ... on Sensor { id sensorState { status } }
  }
}
"""

START_SENSOR = """
mutation($selector: SensorSelector!) {
  startSensor(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { status } }
    ... on PythonError { message }
  }
}
"""

STOP_SENSOR = """
mutation($id: String!) {
  stopSensor(id: $id) {
    __typename
    ... on StopSensorMutationResult { instigationState { status } }
    ... on PythonError { message }
  }
}
"""


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def open_asset_graph(url: str, screenshot: Path, timeout_ms: int = 60_000) -> dict[str, str]:
    """Open the asset graph in headless Chromium (Debian's, no browser download), wait until
    every asset's node is drawn with its live data, save a screenshot; returns each node's text
    by asset name."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 900})
            page.goto(url + ASSET_GRAPH_PATH)
            # A fresh instance greets the first visitor with a newsletter dialog over the graph.
            try:
                page.get_by_role("button", name="Skip").click(timeout=5_000)
            except PlaywrightTimeout:  # no dialog: already dismissed on this instance
                pass
            # Each node writes its asset's name in a header that carries the name as its tooltip
            # (the page title and links do not); the header's parent is the node's box.
            nodes = {}
            for name in ASSETS:
                header = page.locator(f'[data-tooltip="{name}"]').get_by_text(name, exact=True)
                header.wait_for(timeout=timeout_ms)
                nodes[name] = header.locator("xpath=../..")
            # Then the live data (latest event, checks, partitions) replaces "Loading...".
            for box in nodes.values():
                expect(box.get_by_text("Loading")).to_have_count(0, timeout=timeout_ms)
            page.screenshot(path=str(screenshot))
            return {name: box.inner_text() for name, box in nodes.items()}
        finally:
            browser.close()


def open_asset_plots(url: str, asset: str, expected: list[str], screenshot: Path, timeout_ms: int = 60_000) -> None:
    """Open an asset's page in headless Chromium, show its metadata as plots (Dagster 1.13: the
    Overview's Metadata section, Table/Plots), one point per materialization in time order, wait
    until the plots of `expected` entries are drawn, save a screenshot of them. (The Partitions
    axis plots the newest 120 partitions only: on the 2023 sample days, all of them empty.)"""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1500})
            page.goto(f"{url}/assets/{asset}")
            try:
                page.get_by_role("button", name="Skip").click(timeout=5_000)
            except PlaywrightTimeout:
                pass
            page.get_by_role("button", name="Plots").click(timeout=timeout_ms)
            page.get_by_role("button", name="Events").first.click(timeout=timeout_ms)
            for name in expected:
                page.get_by_text(name, exact=True).first.wait_for(timeout=timeout_ms)
            page.wait_for_timeout(1_500)  # the charts draw in
            page.get_by_text("Metadata", exact=True).first.evaluate("e => e.scrollIntoView()")
            page.screenshot(path=str(screenshot))
        finally:
            browser.close()
