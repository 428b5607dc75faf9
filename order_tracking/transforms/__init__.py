"""Pure DataFrame logic: no Dagster, no environment, no storage decisions."""
