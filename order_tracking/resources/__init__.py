"""Resource implementations per environment, always under the same keys."""

import os

from dagster import EnvVar, ResourceDefinition
from dagster_pyspark import LazyPySparkResource

from order_tracking.environment import Environment, on_databricks_cluster
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.landing import LandingZone
from order_tracking.resources.spark import SparkConnect
from order_tracking.settings import SPARK_REMOTE

__all__ = ["SPARK_REMOTE", "resources_for"]


def resources_for(environment: Environment) -> dict:
    if environment is Environment.LOCAL:
        return {
            # The local warm engine, or any Spark Connect server the variable names (its URL may
            # hold a token: bound as an EnvVar, never copied into run config).
            "pyspark": (
                SparkConnect(remote=EnvVar(SPARK_REMOTE)) if os.environ.get(SPARK_REMOTE) else SparkConnect()
            ),
            # Steps run in the Dagster process itself; production binds the Databricks launcher here.
            "step_launcher": _in_process(),
            "landing": LandingZone(),
            "lakehouse": Lakehouse(),
        }
    if environment is Environment.DATABRICKS:
        # Imported here: the local environment needs no Databricks SDK at all.
        from order_tracking.resources.databricks import databricks_launcher_from_env

        return {
            # The cluster's own session. Lazy: the Dagster host only launches steps and must not
            # start a JVM of its own.
            "pyspark": LazyPySparkResource(spark_config={}),
            # A launched step loads these definitions again on the cluster, where it must run in
            # place rather than launch itself once more.
            "step_launcher": (
                _in_process() if on_databricks_cluster() else databricks_launcher_from_env()
            ),
            # No local default: production data lives in buckets named by the deployment.
            "landing": LandingZone(uri=EnvVar("ORDER_TRACKING_LANDING_URI")),
            "lakehouse": Lakehouse(uri=EnvVar("ORDER_TRACKING_LAKEHOUSE_URI")),
        }
    raise ValueError(f"no resources for environment {environment}")


def _in_process() -> ResourceDefinition:
    return ResourceDefinition.none_resource(description="Runs steps in-process (no step launcher).")
