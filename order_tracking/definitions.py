from dagster import Definitions, in_process_executor, map_asset_specs, with_source_code_references

from order_tracking.assets import order_tracking, raw_order_files, staged_orders
from order_tracking.environment import Environment, current_environment, sensor_settings
from order_tracking.jobs import order_tracking_job
from order_tracking.resources import resources_for
from order_tracking.sensors import build_order_files_sensor

environment = current_environment()

assets = with_source_code_references([raw_order_files, staged_orders, order_tracking])
if environment is Environment.DATABRICKS:
    # The graph shows where the steps run; the asset code does not know (nor need to).
    assets = map_asset_specs(lambda spec: spec.merge_attributes(kinds={"databricks"}), assets)

defs = Definitions(
    assets=assets,
    jobs=[order_tracking_job],
    sensors=[build_order_files_sensor(*sensor_settings(environment))],
    resources=resources_for(environment),
    # The three steps of a run are a chain: running them in one process shares one Spark session
    # instead of starting a JVM per step. (Remote steps still go through the step launcher.)
    executor=in_process_executor,
)
