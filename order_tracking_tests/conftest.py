"""Shared fixtures: one Spark + Delta session for the whole run, and per-test lakehouses."""

from pathlib import Path

import pytest
from dagster import DagsterInstance
from dagster_pyspark.resources import spark_session_from_config

from order_tracking.resources.lakehouse import LocalLakehouse
from order_tracking.resources.landing import LocalLandingZone
from order_tracking.resources import resources_for
from order_tracking.environment import Environment
from order_tracking.resources.spark import local_spark_config


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    # The same configuration as the local resource; Spark's scratch goes under pytest's tmp.
    scratch = tmp_path_factory.mktemp("spark")
    config = local_spark_config() | {
        "spark.sql.warehouse.dir": str(scratch / "warehouse"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={scratch}",
    }
    session = spark_session_from_config(config)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def landing_dir(tmp_path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


@pytest.fixture
def lakehouse_dir(tmp_path) -> Path:
    return tmp_path / "lakehouse"


@pytest.fixture
def local_resources(spark, landing_dir, lakehouse_dir) -> dict:
    """The local environment's resources, pointed at this test's folders."""
    return {
        **resources_for(Environment.LOCAL),
        "landing": LocalLandingZone(uri=str(landing_dir)),
        "lakehouse": LocalLakehouse(uri=str(lakehouse_dir)),
    }


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        yield instance
