"""Resource implementations per environment, always under the same keys."""

from dagster import ResourceDefinition
from dagster_pyspark import PySparkResource

from order_tracking.environment import Environment
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.landing import LandingZone
from order_tracking.resources.spark import local_spark_config


def resources_for(environment: Environment) -> dict:
    if environment is Environment.LOCAL:
        return {
            "pyspark": PySparkResource(spark_config=local_spark_config()),
            # Steps run in the Dagster process itself; production binds the Databricks launcher here.
            "step_launcher": ResourceDefinition.none_resource(
                description="Runs steps in-process (no step launcher)."
            ),
            "landing": LandingZone(),
            "lakehouse": Lakehouse(),
        }
    raise ValueError(f"no resources for environment {environment}")
