import warnings

from dagster import (
    BetaWarning,
    Definitions,
    in_process_executor,
    map_asset_specs,
    with_source_code_references,
)

from order_tracking.assets import order_insights, order_tracking_compaction, order_tracking_pipeline
from order_tracking.environment import (
    Environment,
    current_environment,
    compaction_schedule_status,
    sensor_settings,
)
from order_tracking.freshness import arrival_freshness_job, build_arrival_schedule, day_file_arrived_by_deadline
from order_tracking.jobs import build_compaction_schedule, order_tracking_job, order_tracking_compaction_job
from order_tracking.lost_retries import build_lost_retry_sensor
from order_tracking.operations import explain_order_job, rebuild_job, undo_run_job
from order_tracking.restatement import build_restatement_sensor, order_figures_job
from order_tracking.resources import resources_for
from order_tracking.sensors import build_order_files_sensor

environment = current_environment()

with warnings.catch_warnings():
    # The UI's link from each asset to its code is a Beta API we use knowingly: its warnings are
    # silenced for this call only, not for the project.
    warnings.simplefilter("ignore", BetaWarning)
    assets = with_source_code_references([order_tracking_pipeline, order_insights, order_tracking_compaction])
if environment is Environment.DATABRICKS:
    # The graph shows where the steps run; the asset code does not know (nor need to).
    assets = map_asset_specs(lambda spec: spec.merge_attributes(kinds={"databricks"}), assets)

defs = Definitions(
    assets=assets,
    asset_checks=[day_file_arrived_by_deadline],
    jobs=[
        order_tracking_job,
        order_figures_job,
        order_tracking_compaction_job,
        arrival_freshness_job,
        explain_order_job,
        undo_run_job,
        rebuild_job,
    ],
    schedules=[
        build_compaction_schedule(compaction_schedule_status(environment)),
        build_arrival_schedule(compaction_schedule_status(environment)),
    ],
    sensors=[
        build_order_files_sensor(*sensor_settings(environment)),
        # On wherever the files sensor is: restating is part of keeping the figures correct.
        build_restatement_sensor(*sensor_settings(environment)),
        # A run the files sensor started must not stay failed because Dagster lost its retry.
        build_lost_retry_sensor(*sensor_settings(environment)),
    ],
    resources=resources_for(environment),
    # A run's steps share the process and its one Spark session. (A step on Databricks still goes
    # through the step launcher.)
    executor=in_process_executor,
)
