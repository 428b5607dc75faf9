from dagster import define_asset_job

from order_tracking.assets import order_tracking, raw_order_files, staged_orders

order_tracking_job = define_asset_job(
    "order_tracking_job",
    selection=[raw_order_files, staged_orders, order_tracking],
    description="Land, stage and merge one day of order files.",
)
