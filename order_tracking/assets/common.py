"""What every asset shares: partitions, group, owners and resource keys."""

from dagster import BackfillPolicy

from order_tracking.partitions import daily_partitions

# The same keys in every environment; only their implementations change (see resources/).
RESOURCE_KEYS = {"pyspark", "step_launcher", "landing", "lakehouse"}

OWNERS = ["team:data-platform"]

DAILY_ASSET_DEFAULTS = dict(
    partitions_def=daily_partitions,
    # A backfill of a range is one run, and its step works day by day inside it: one Spark
    # session (on Databricks, one cluster) for the range instead of one per day. Why in
    # docs/design.md ("Backfills").
    backfill_policy=BackfillPolicy.single_run(),
    group_name="order_tracking",
)
