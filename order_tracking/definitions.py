from dagster import Definitions, in_process_executor, with_source_code_references

from order_tracking.assets import order_tracking, raw_order_files, staged_orders
from order_tracking.environment import current_environment, sensor_settings
from order_tracking.jobs import order_tracking_job
from order_tracking.resources import resources_for
from order_tracking.sensors import build_order_files_sensor

environment = current_environment()

defs = Definitions(
    assets=with_source_code_references([raw_order_files, staged_orders, order_tracking]),
    jobs=[order_tracking_job],
    sensors=[build_order_files_sensor(*sensor_settings(environment))],
    resources=resources_for(environment),
    # The three steps of a run are a chain: running them in one process shares one Spark session
    # instead of starting a JVM per step. (Remote steps still go through the step launcher.)
    executor=in_process_executor,
)
