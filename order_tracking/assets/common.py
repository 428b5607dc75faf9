"""What every asset of the pipeline shares: partitions, group, owners and resource keys."""

from dagster import BackfillPolicy

from order_tracking.partitions import daily_partitions

# The same keys in every environment; only their implementations change (see resources/).
RESOURCE_KEYS = {"pyspark", "step_launcher", "landing", "lakehouse"}

# Who owns an asset and what it needs, partitioned or not.
OWNERSHIP = dict(owners=["team:data-platform"], required_resource_keys=RESOURCE_KEYS)

ASSET_DEFAULTS = dict(
    partitions_def=daily_partitions,
    # A backfill of a range is one run of three steps, not three steps per day: one Spark
    # session (on Databricks, one job cluster per step instead of one per step and day). Each
    # asset still works day by day inside the run. All three must share the policy, or Dagster
    # splits the run. Why in the README ("Backfills").
    backfill_policy=BackfillPolicy.single_run(),
    group_name="order_tracking",
    **OWNERSHIP,
)
