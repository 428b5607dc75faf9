"""The one place that decides which environment this process deploys, and what follows from it."""

import os
from enum import Enum

from dagster import DefaultScheduleStatus, DefaultSensorStatus


class Environment(str, Enum):
    LOCAL = "local"  # local Spark + Delta, local or gs:// landing, no-op step launcher
    DATABRICKS = "databricks"  # steps run on a Databricks job cluster through the step launcher


def current_environment() -> Environment:
    """ORDER_TRACKING_ENV, default local. An unknown name is an error, not a silent fallback."""
    name = os.environ.get("ORDER_TRACKING_ENV", Environment.LOCAL.value)
    try:
        return Environment(name)
    except ValueError:
        known = ", ".join(e.value for e in Environment)
        raise ValueError(f"ORDER_TRACKING_ENV={name!r} is not one of: {known}") from None


def on_databricks_cluster() -> bool:
    """True inside a Databricks runtime, where a launched step executes (the runtime sets this)."""
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def sensor_settings(environment: Environment) -> tuple[int, DefaultSensorStatus]:
    """(interval, default status) of order_files_sensor: running by default in production; locally
    stopped unless ORDER_TRACKING_SENSOR=running (a laptop should not move files on its own)."""
    interval = int(os.environ.get("ORDER_TRACKING_SENSOR_INTERVAL_SECONDS", "30"))
    wanted = os.environ.get("ORDER_TRACKING_SENSOR", "")
    running = wanted == "running" if environment is Environment.LOCAL else wanted != "stopped"
    return interval, DefaultSensorStatus.RUNNING if running else DefaultSensorStatus.STOPPED


def compaction_schedule_status(environment: Environment) -> DefaultScheduleStatus:
    """The daily compaction runs by default in production; locally only when started in the Dagster UI."""
    if environment is Environment.DATABRICKS:
        return DefaultScheduleStatus.RUNNING
    return DefaultScheduleStatus.STOPPED
