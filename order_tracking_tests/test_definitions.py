"""The code location loads, wires the same resource keys everywhere, and runs from the CLI."""

import pytest
from dagster import AssetKey, BackfillPolicy, DefaultScheduleStatus

from order_tracking.assets.common import RESOURCE_KEYS
from order_tracking.assets.pipeline import DAILY_ASSETS
from order_tracking.definitions import defs
from order_tracking.environment import (
    Environment,
    current_environment,
    compaction_schedule_status,
)
from order_tracking.resources import resources_for

pytestmark = pytest.mark.quick  # the inner loop: make check

ASSETS = ["raw_order_files", "staged_orders", "order_tracking"]  # written out: what users select
INSIGHTS = ["order_status_history", "order_status_daily", "order_kpis_daily"]
COMPACTION = "order_tracking_compaction"


def test_definitions_load_with_the_partitioned_assets():
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == {*ASSETS, *INSIGHTS, COMPACTION}
    for name in ASSETS + INSIGHTS:
        node = graph.get(AssetKey(name))
        assert node.partitions_def.get_first_partition_key() == "2023-01-01"
    assert defs.resolve_job_def("order_tracking_job")


def test_every_asset_goes_through_the_step_launcher_and_needs_only_bound_keys():
    """Every asset requires the step launcher (so that in production its step runs on
    Databricks) and the Spark session; what it requires is bound under the same keys in every
    environment."""
    for name in [*ASSETS, *INSIGHTS, COMPACTION]:
        required = defs.resolve_assets_def(name).required_resource_keys - {"io_manager"}
        assert {"pyspark", "step_launcher"} <= required <= RESOURCE_KEYS
    assert defs.resolve_assets_def(ASSETS[0]).required_resource_keys >= RESOURCE_KEYS
    assert set(resources_for(Environment.LOCAL)) == RESOURCE_KEYS


def test_kinds_say_what_each_asset_touches_locally():
    kinds = {s.key.to_user_string(): s.kinds for s in defs.resolve_all_asset_specs()}
    assert kinds == {
        "raw_order_files": {"gcs", "spark", "delta"},
        "staged_orders": {"spark", "delta"},
        "order_tracking": {"spark", "delta"},
        **{name: {"spark", "delta"} for name in INSIGHTS},
        COMPACTION: {"spark", "delta"},
    }  # "databricks" is added in the databricks environment (test_databricks.py)


def test_the_three_assets_are_one_step_in_the_writers_pool():
    """One step per run (on Databricks one cluster per run); any subset of the three can run."""
    pipeline = {defs.resolve_assets_def(name) for name in ASSETS}
    assert len(pipeline) == 1
    [step] = pipeline
    assert step.can_subset
    assert step.op.pool == "order_tracking_writer"
    # Compaction rewrites the files a MERGE updates: it takes turns with the pipeline.
    assert defs.resolve_assets_def(COMPACTION).op.pool == "order_tracking_writer"
    checks = {key.name for key in step.check_keys}
    assert checks == {"partition_has_no_quarantined_rows", "tracking_num_is_unique", "status_is_known"}


def test_compaction_is_a_daily_schedule_of_its_own_unpartitioned_asset():
    graph = defs.resolve_asset_graph()
    compaction = graph.get(AssetKey(COMPACTION))
    assert compaction.partitions_def is None
    assert compaction.parent_keys == {AssetKey("order_tracking")}
    assert compaction.group_name != graph.get(AssetKey("order_tracking")).group_name
    [schedule] = [s for s in defs.schedules if s.name == "order_tracking_compaction_schedule"]
    assert schedule.job_name == "order_tracking_compaction_job"
    assert schedule.cron_schedule == "0 4 * * *"
    selected = defs.resolve_job_def("order_tracking_compaction_job").asset_layer.selected_asset_keys
    assert selected == {AssetKey(COMPACTION)}
    # Running by default where production runs; a laptop compacts only when asked.
    assert compaction_schedule_status(Environment.DATABRICKS) is DefaultScheduleStatus.RUNNING
    assert compaction_schedule_status(Environment.LOCAL) is DefaultScheduleStatus.STOPPED
    assert schedule.default_status is DefaultScheduleStatus.STOPPED  # this process is local


def test_one_automation_mechanism_the_sensor_runs_the_day_through_to_its_figures():
    """New files are the only trigger: the sensor requests the job of the three assets and the
    insights, so the day flows to order_tracking and its figures in one run. No asset also
    carries an automation condition, which would start a second, competing run for the same day.
    The restatement sensor runs only the figures (never the history, which triggers it)."""
    graph = defs.resolve_asset_graph()
    assert all(graph.get(AssetKey(name)).automation_condition is None for name in ASSETS + INSIGHTS)
    sensors = {s.name: s for s in defs.sensors}
    assert sensors["order_files_sensor"].job_name == "order_tracking_job"
    selected = defs.resolve_job_def("order_tracking_job").asset_layer.selected_asset_keys
    assert {k.to_user_string() for k in selected} == set(ASSETS + INSIGHTS)
    assert sensors["figures_restatement_sensor"].job_name == "order_figures_job"
    selected = defs.resolve_job_def("order_figures_job").asset_layer.selected_asset_keys
    assert {k.to_user_string() for k in selected} == set(INSIGHTS[1:])
    # The retry Dagster lost is the same run again: it selects nothing new.
    assert {t.job_name for t in sensors["lost_retry_sensor"].targets} == {"order_tracking_job", "order_figures_job"}


def test_the_insights_are_one_step_in_a_pool_of_their_own():
    [step] = {defs.resolve_assets_def(name) for name in INSIGHTS}
    assert step.can_subset
    assert step.op.pool == "order_insights_writer"
    checks = {key.name for key in step.check_keys}
    assert checks == {"history_is_contiguous", "history_matches_order_tracking", "status_goes_backwards"}
    [contiguous] = [spec for spec in step.check_specs if spec.name == "history_is_contiguous"]
    assert contiguous.blocking


def test_the_arrival_check_is_scheduled_after_the_deadline():
    [schedule] = [s for s in defs.schedules if s.name == "arrival_freshness_schedule"]
    assert schedule.cron_schedule == "15 6 * * *"  # 06:00 UTC the next day, plus 15 minutes
    job = defs.resolve_job_def("arrival_freshness_job")
    assert {key.name for key in job.asset_layer.asset_graph.asset_check_keys} >= {"day_file_arrived_by_deadline"}


def test_a_range_backfill_is_one_run_of_every_asset():
    # Dagster packs a range into one run only if every asset of the run has this policy.
    policies = {defs.resolve_assets_def(name).backfill_policy for name in ASSETS + INSIGHTS}
    assert policies == {BackfillPolicy.single_run()}


def test_unknown_environment_is_an_error(monkeypatch):
    monkeypatch.setenv("ORDER_TRACKING_ENV", "prod-ish")
    with pytest.raises(ValueError, match="ORDER_TRACKING_ENV='prod-ish'"):
        current_environment()


def test_cli_materializes_a_partition_with_only_environment_variables(cli_materialization):
    """The operators' scripting contract, exactly as the README shows it (run in conftest)."""
    completed, folders = cli_materialization
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "RUN_SUCCESS" in completed.stderr
    assert (folders["lakehouse"] / "order_tracking" / "_delta_log").is_dir()
    assert list(folders["landing"].iterdir()) == []


def test_the_days_selection_is_the_three_assets_in_graph_order():
    assert DAILY_ASSETS == ASSETS


def test_the_explain_job_runs_where_the_assets_run():
    # Through the step launcher too: in production its Spark work runs on a Databricks cluster.
    [node] = defs.resolve_job_def("explain_order_job").nodes
    assert node.definition.required_resource_keys >= {"pyspark", "step_launcher", "lakehouse"}


def test_the_undo_job_waits_for_the_writers_pool():
    # No MERGE may commit between its reading of the history and its RESTORE.
    [node] = defs.resolve_job_def("undo_run_job").nodes
    assert node.definition.pool == "order_tracking_writer"
    assert node.definition.required_resource_keys >= {"pyspark", "step_launcher", "lakehouse"}


def test_the_rebuild_job_waits_for_the_writers_pool():
    # A MERGE committing during its own would leave its rows beside the rebuilt ones.
    [node] = defs.resolve_job_def("rebuild_job").nodes
    assert node.definition.pool == "order_tracking_writer"
