"""What every asset of the pipeline shares: partitions, group, owners and resource keys."""

from order_tracking.partitions import daily_partitions

# The same keys in every environment; only their implementations change (see resources/).
RESOURCE_KEYS = {"pyspark", "step_launcher", "landing", "lakehouse"}

ASSET_DEFAULTS = dict(
    partitions_def=daily_partitions,
    group_name="order_tracking",
    owners=["team:data-platform"],
    required_resource_keys=RESOURCE_KEYS,
)
