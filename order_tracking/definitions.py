from dagster import Definitions, define_asset_job, in_process_executor, with_source_code_references

from order_tracking.assets import order_tracking, raw_order_files, staged_orders
from order_tracking.environment import current_environment
from order_tracking.resources import resources_for

order_tracking_job = define_asset_job(
    "order_tracking_job",
    selection=[raw_order_files, staged_orders, order_tracking],
    description="Land, stage and merge one day of order files.",
)

defs = Definitions(
    assets=with_source_code_references([raw_order_files, staged_orders, order_tracking]),
    jobs=[order_tracking_job],
    resources=resources_for(current_environment()),
    # The three steps of a run are a chain: running them in one process shares one Spark session
    # instead of starting a JVM per step. (Remote steps still go through the step launcher.)
    executor=in_process_executor,
)
