"""Production mode: the real dagster-databricks launcher against the local Databricks stand-in.

Runs go through the `dagster` CLI in the databricks environment, as an operator would start them;
the stand-in (order_tracking_devtools/databricks_standin) executes each submitted step with local
Spark + Delta on a classic session, as a cluster gives a step. The sample days run on new job
clusters, the default (one per Dagster run: the day's three assets are one step); the other tests
use the stand-in's all-purpose cluster (one warm Spark driver that task processes attach to, as on
Databricks), the existing-cluster option.
Not exercised here: a real workspace, GCS-backed Delta on a cluster (the lakehouse is a folder).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, Unauthenticated

from order_tracking import settings
from order_tracking.assets.insights import INSIGHT_ASSETS
from order_tracking.assets.pipeline import DAILY_ASSETS
from order_tracking.partitions import RANGE_END_TAG, RANGE_START_TAG
from order_tracking.resources.databricks import (
    DBR_17_LTS,
    DatabricksLauncher,
    check_reachable,
    cluster_libraries,
)
from order_tracking.sample_data import land_sample_files, sample_files
from order_tracking_devtools.databricks_standin import DatabricksStandIn, operator
from order_tracking_devtools.databricks_standin.operator import (
    DAGSTER,
    materialize,
    materialize_command,
)
from order_tracking_tests.helpers import SAMPLE_DAYS, STATUS_MIX, business_rows, sample_days_oracle

# Three of the five sample days: each Dagster run is one Databricks run (a new job cluster).
DAYS = SAMPLE_DAYS[:3]
RUNS = [DAYS[0], f"{DAYS[1]}...{DAYS[2]}"]
TOKEN = "dapi-standin-0123456789abcdef"
SECRET = "s3cr3t-value-from-the-scope"
SCOPE, SECRET_KEY = "order-tracking", "partner-api-key"
CLUSTER = "0101-000000-standin"
POOL = "0101-000000-pool-standin"


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    with DatabricksStandIn(
        tmp_path_factory.mktemp("standin"),
        token=TOKEN,
        secret_scopes={SCOPE: {SECRET_KEY: SECRET}},
        all_purpose_clusters=(CLUSTER,),
        # The cluster's image: where its Spark finds Delta's jars (already resolved by `make jars`).
        cluster_env={"ORDER_TRACKING_IVY_DIR": str(settings.ivy_dir())},
        pending_seconds=0.2,
    ) as standin:
        yield standin


def databricks_env(standin: DatabricksStandIn, root: Path, **extra: str) -> dict[str, str]:
    return operator.databricks_env(standin.url, TOKEN, root, **extra)


def runs_of(env: dict) -> list:
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        return [(run, instance.all_logs(run.run_id)) for run in instance.get_runs()]


@pytest.fixture(scope="module")
def sample_days(standin, tmp_path_factory):
    """The first sample days on new job clusters (the default), with a secret exported from the
    scope on the cluster: day 1 as a daily run, days 2-3 as one range run (as a backfill runs
    them)."""
    root = tmp_path_factory.mktemp("sample_days")
    land_sample_files(root / "landing")
    env = databricks_env(
        standin,
        root,
        ORDER_TRACKING_DATABRICKS_SECRET_SCOPE=SCOPE,
        ORDER_TRACKING_DATABRICKS_SECRETS=f"PARTNER_API_KEY={SECRET_KEY}",
    )
    first_run = max(standin.runs, default=0)
    started = time.monotonic()
    outputs = [materialize(env, part) for part in RUNS]
    print(f"{len(DAYS)} days through the stand-in: {time.monotonic() - started:.0f} s")
    runs = [run for run_id, run in standin.runs.items() if run_id > first_run]
    return root, env, outputs, runs


def test_sample_days_give_the_local_result(sample_days, spark):
    root, _, outputs, _ = sample_days
    for completed in outputs:
        assert completed.returncode == 0, completed.stderr[-3000:]
    table = spark.read.format("delta").load(str(root / "lakehouse" / "order_tracking"))
    assert business_rows(table) == sample_days_oracle(len(DAYS))
    remaining = sorted(p.name for p in (root / "landing").iterdir())
    assert remaining == [p.name for p in sample_files()[len(DAYS):]]


def test_each_dagster_run_starts_one_cluster(sample_days):
    """A daily run and a range run: one Databricks run each, on one new job cluster each (it was
    three, one per asset)."""
    _, _, _, runs = sample_days
    assert len(runs) == len(RUNS)
    assert {(r.life_cycle_state, r.result_state) for r in runs} == {("TERMINATED", "SUCCESS")}
    assert all("new_cluster" in r.task and "existing_cluster_id" not in r.task for r in runs)


def test_materializations_and_checks_arrive_in_the_local_instance(sample_days):
    _, env, _, _ = sample_days
    runs = runs_of(env)
    assert sorted(
        run.tags.get("dagster/partition") or "{}...{}".format(
            run.tags[RANGE_START_TAG], run.tags[RANGE_END_TAG]
        )
        for run, _ in runs
    ) == RUNS
    assert {run.status for run, _ in runs} == {DagsterRunStatus.SUCCESS}
    by_asset_and_day = {}
    for _, logs in runs:
        events = [e.dagster_event for e in logs if e.dagster_event]
        for e in events:
            if e.event_type == DagsterEventType.ASSET_MATERIALIZATION:
                materialization = e.step_materialization_data.materialization
                key = (e.asset_key.to_user_string(), materialization.partition)
                by_asset_and_day[key] = materialization.metadata
        checks = {
            e.event_specific_data.check_name: e.event_specific_data.passed
            for e in events
            if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
        }
        assert checks["tracking_num_is_unique"] is True
        # The remote step's own events, replayed here: their process is not this run's.
        step_pids = {
            e.pid for e in events if e.event_type == DagsterEventType.STEP_START and e.step_key == "order_tracking_pipeline"
        }
        assert len(step_pids) == 1
    # Every asset and day has its own materialization, with its own numbers, range run included.
    assert set(by_asset_and_day) == {
        (asset, day) for asset in DAILY_ASSETS for day in DAYS
    }
    sizes = [by_asset_and_day["order_tracking", day]["dagster/row_count"].value for day in DAYS]
    inserted = [by_asset_and_day["order_tracking", day]["inserted"].value for day in DAYS]
    assert sizes == [sum(inserted[: i + 1]) for i in range(len(DAYS))]
    assert sizes[-1] == len(sample_days_oracle(len(DAYS)))


def test_the_secret_reaches_the_cluster_but_no_log(sample_days, standin):
    _, env, outputs, runs = sample_days
    for run in runs:
        assert {"scope": SCOPE, "key": SECRET_KEY} in standin.secret_reads(run)
    logged = "".join(
        json.dumps(entry.to_json()) if hasattr(entry, "to_json") else repr(entry)
        for _, logs in runs_of(env)
        for entry in logs
    )
    captured = "".join(c.stdout + c.stderr for c in outputs)
    assert "Exporting PARTNER_API_KEY" in captured  # the launcher's own line, names only
    for value in (SECRET, TOKEN):
        assert value not in logged
        assert value not in captured


def test_the_launcher_needs_only_the_emulated_endpoints(sample_days, standin):
    statuses = {(method, path): status for method, path, status in standin.calls if status >= 400}
    # 404 on dbfs/read is the launcher polling for an events file not yet written: expected.
    assert set(statuses) <= {("GET", "/api/2.0/dbfs/read")}
    used = {(method, path) for method, path, _ in standin.calls}
    assert ("POST", "/api/2.2/jobs/runs/submit") in used and (
        "POST",
        "/api/2.0/dbfs/add-block",
    ) in used


def test_a_failure_inside_the_remote_step_fails_the_step_with_its_traceback(standin, tmp_path):
    """On a new job cluster from an instance pool: the lakehouse path runs through a file."""
    land_sample_files(tmp_path / "landing")
    (tmp_path / "not_a_folder").write_text("")
    env = databricks_env(
        standin,
        tmp_path,
        ORDER_TRACKING_LAKEHOUSE_URI=str(tmp_path / "not_a_folder" / "lakehouse"),
        ORDER_TRACKING_DATABRICKS_SERVICE_ACCOUNT="orders@project.iam.gserviceaccount.com",
        ORDER_TRACKING_DATABRICKS_INSTANCE_POOL_ID=POOL,
    )
    completed = materialize(env, "2023-01-01", select="raw_order_files")
    assert completed.returncode != 0
    [(_, logs)] = runs_of(env)
    [failure] = [
        e.dagster_event
        for e in logs
        if e.dagster_event and e.dagster_event.event_type == DagsterEventType.STEP_FAILURE
    ]
    error, chain = failure.step_failure_data.error, ""
    while error is not None:
        chain += error.message + "".join(error.stack)
        error = error.cause or error.context
    assert "NotADirectoryError" in chain and "not_a_folder" in chain
    assert "order_tracking/raw_zone.py" in chain  # frames of our code, as run on the cluster

    submitted = list(standin.runs.values())[-1].task
    assert submitted["new_cluster"]["spark_version"] == DBR_17_LTS
    assert submitted["new_cluster"]["instance_pool_id"] == POOL
    assert "node_type_id" not in submitted["new_cluster"]  # the pool's
    assert submitted["new_cluster"]["gcp_attributes"] == {
        "google_service_account": "orders@project.iam.gserviceaccount.com"
    }
    packages = {lib["pypi"]["package"].split("==")[0] for lib in submitted["libraries"]}
    assert "pyspark" not in packages and "dagster-pyspark" in packages


def test_a_remote_process_failure_fails_the_step_with_its_stderr(standin, tmp_path):
    land_sample_files(tmp_path / "landing")
    env = databricks_env(
        standin,
        tmp_path,
        ORDER_TRACKING_DATABRICKS_CLUSTER_ID=CLUSTER,
        ORDER_TRACKING_DATABRICKS_SECRET_SCOPE=SCOPE,
        ORDER_TRACKING_DATABRICKS_SECRETS="PARTNER_API_KEY=no-such-key",
    )
    completed = materialize(env, "2023-01-01", select="raw_order_files")
    assert completed.returncode != 0
    run = list(standin.runs.values())[-1]
    assert (run.life_cycle_state, run.result_state) == ("TERMINATED", "FAILED")
    assert "failed with result state" in completed.stderr
    [(_, logs)] = runs_of(env)
    text = "\n".join(
        e.user_message or "" for e in logs
    )  # the remote stderr, logged by the launcher
    assert "Secret does not exist with scope: order-tracking and key: no-such-key" in text


def test_an_interrupted_run_is_cancelled_on_databricks(standin, tmp_path):
    land_sample_files(tmp_path / "landing")
    env = databricks_env(standin, tmp_path, ORDER_TRACKING_DATABRICKS_CLUSTER_ID=CLUSTER)
    known = set(standin.runs)
    process = subprocess.Popen(
        materialize_command("2023-01-01"),
        env=env,
        cwd=env["DAGSTER_HOME"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while not [
        r
        for r in standin.runs.values()
        if r.run_id not in known and r.life_cycle_state == "RUNNING"
    ]:
        assert time.monotonic() < deadline, "no run started on the stand-in"
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=120)[0].decode()
    assert process.returncode != 0
    [run] = [r for r in standin.runs.values() if r.run_id not in known]
    # The cancel request is in before the run exits; the stand-in records the final state once
    # the cancelled process has stopped.
    deadline = time.monotonic() + 30
    while run.result_state is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run.result_state == "CANCELED", output[-3000:]
    assert run.process.wait(timeout=30) is not None


def test_an_unreachable_workspace_fails_fast_with_a_clear_message(standin, tmp_path):
    land_sample_files(tmp_path / "landing")
    env = databricks_env(standin, tmp_path, DATABRICKS_HOST="http://127.0.0.1:9")  # discard port
    started = time.monotonic()
    completed = materialize(env, "2023-01-01", select="raw_order_files")
    assert completed.returncode != 0
    assert "Databricks workspace http://127.0.0.1:9 is unreachable" in completed.stderr
    # The SDK alone would retry a refused connection for 300 s.
    assert time.monotonic() - started < 120


def test_reachability_check_names_the_host():
    with pytest.raises(Exception, match="no-such-host.invalid is unreachable"):
        check_reachable("https://no-such-host.invalid", timeout_seconds=2)


# What the README lists as required for the databricks environment; nothing else may be needed.
DOCUMENTED_REQUIRED = {
    "DATABRICKS_HOST": "https://1234567890.1.gcp.databricks.com",
    "DATABRICKS_TOKEN": "dapi-placeholder",
    "ORDER_TRACKING_LANDING_URI": "gs://orders-landing/incoming",
    "ORDER_TRACKING_LAKEHOUSE_URI": "gs://orders-lakehouse/order_tracking",
}
PLAN = (
    "from order_tracking.definitions import defs;"
    "from dagster._core.execution.api import create_execution_plan;"
    "job = defs.resolve_job_def('order_tracking_job');"
    "print(sorted(s.key for s in create_execution_plan(job).steps))"
)


@pytest.mark.parametrize("variables", ["none", "documented"])
def test_databricks_definitions_load_and_plan_with_documented_variables_only(variables):
    """Loading needs no variable; planning resolves resources, so it needs exactly the documented
    ones (values are placeholders: nothing is contacted)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("ORDER_TRACKING_", "DATABRICKS_"))
    }
    env["ORDER_TRACKING_ENV"] = "databricks"
    code = (
        "from order_tracking.definitions import defs;"
        "print(sorted((s.key.to_user_string(), sorted(s.kinds)) for s in defs.resolve_all_asset_specs()))"
    )
    if variables == "documented":
        env |= DOCUMENTED_REQUIRED
        code = PLAN
    completed = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    if variables == "documented":
        # The day's job: the pipeline and the insights on Databricks; the arrival check (no
        # Spark: when files landed) in the Dagster process.
        assert "['order_insights', 'order_tracking_pipeline', 'raw_order_files_day_file_arrived_by_deadline']" in completed.stdout
    else:  # the Dagster UI shows where the steps run
        assert completed.stdout.strip().splitlines()[-1] == str([
            ("order_kpis_daily", ["databricks", "delta", "spark"]),
            ("order_status_daily", ["databricks", "delta", "spark"]),
            ("order_status_history", ["databricks", "delta", "spark"]),
            ("order_tracking", ["databricks", "delta", "spark"]),
            ("order_tracking_compaction", ["databricks", "delta", "spark"]),
            ("raw_order_files", ["databricks", "delta", "gcs", "spark"]),
            ("staged_orders", ["databricks", "delta", "spark"]),
        ])


def test_cluster_libraries_are_the_pinned_dependencies_minus_the_runtime():
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    libraries = [lib["pypi"]["package"] for lib in cluster_libraries()]
    assert libraries and all(f'"{spec}"' in pyproject for spec in libraries)
    assert not [spec for spec in libraries if spec.startswith(("pyspark", "delta-spark"))]


def test_launcher_settings_need_exactly_one_credential():
    from dagster import build_init_resource_context

    for fields in ({}, {"token": "t", "client_id": "c", "client_secret": "s"}):
        with pytest.raises(Exception, match="exactly one of the two"):
            DatabricksLauncher(host="https://x", **fields).setup_for_execution(
                build_init_resource_context()
            )


# -- the stand-in itself, through the same SDK the launcher uses -----------------------------


def sdk(standin, token=TOKEN) -> WorkspaceClient:
    return WorkspaceClient(host=standin.url, token=token)


def test_standin_dbfs_round_trip_and_missing_file(standin):
    client = sdk(standin)
    handle = client.dbfs.create(path="/standin-test/a.bin", overwrite=True).handle
    client.dbfs.add_block(handle=handle, data="aGVsbG8=")
    client.dbfs.close(handle=handle)
    assert client.dbfs.read(path="/standin-test/a.bin").data == "aGVsbG8="
    with pytest.raises(NotFound) as missing:
        client.dbfs.read(path="/standin-test/missing.bin")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_standin_rejects_a_wrong_token(standin):
    with pytest.raises(Unauthenticated):
        sdk(standin, token="wrong").dbfs.get_status(path="/")


def test_the_insights_run_on_a_cluster_from_the_days_the_pipeline_merged(sample_days, standin, spark):
    """The insight step through the launcher (a classic session, as on Databricks; the
    all-purpose cluster, whose warm driver spares the suite a job cluster's start): the history
    of the days merged above, its checks, and the days' status mix."""
    root, env, _, _ = sample_days
    before = max(standin.runs, default=0)

    completed = materialize(
        env | {"ORDER_TRACKING_DATABRICKS_CLUSTER_ID": CLUSTER},
        f"{DAYS[0]}...{DAYS[-1]}",
        select=",".join(INSIGHT_ASSETS),
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    [run] = [run for run_id, run in standin.runs.items() if run_id > before]
    assert run.task["existing_cluster_id"] == CLUSTER
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        [run] = [r for r in instance.get_runs(limit=1)]
        checks = {
            e.dagster_event.event_specific_data.check_name: e.dagster_event.event_specific_data.passed
            for e in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
        }
    assert checks["history_is_contiguous"] and checks["history_matches_order_tracking"]
    mix = spark.read.format("delta").load(str(root / "lakehouse" / "order_status_daily")).collect()
    # Days 1 and 2 get no late line from days 4-5: their mix is already the final one.
    for day in DAYS[:2]:
        assert {r.status: r.orders for r in mix if r.day.isoformat() == day} == STATUS_MIX[day]


def test_compaction_runs_on_the_cluster_and_changes_no_row(sample_days, standin, spark):
    """order_tracking_compaction goes through the launcher like the daily steps (on the
    all-purpose cluster; last in this module: it rewrites the table the tests above read)."""
    root, env, _, _ = sample_days
    before = max(standin.runs, default=0)

    completed = materialize_compaction(env | {"ORDER_TRACKING_DATABRICKS_CLUSTER_ID": CLUSTER})

    assert completed.returncode == 0, completed.stderr[-3000:]
    [run] = [run for run_id, run in standin.runs.items() if run_id > before]
    assert run.task["existing_cluster_id"] == CLUSTER
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        event = instance.get_latest_materialization_event(AssetKey("order_tracking_compaction"))
    metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    assert metadata["files_before"] > metadata["files_after"] == 1
    table = spark.read.format("delta").load(str(root / "lakehouse" / "order_tracking"))
    assert business_rows(table) == sample_days_oracle(len(DAYS))


def materialize_compaction(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "order_tracking.definitions",
         "--select", "order_tracking_compaction"],
        env=env, cwd=env["DAGSTER_HOME"], capture_output=True, text=True, timeout=900,
    )
