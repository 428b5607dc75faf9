"""Shared fixtures: one Spark + Delta session for the whole run, and per-test lakehouses."""

import os
import subprocess
from pathlib import Path

import pytest
from dagster import DagsterInstance
from hypothesis import settings
from dagster_pyspark.resources import spark_session_from_config

from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.landing import LandingZone
from order_tracking.resources import resources_for
from order_tracking.environment import Environment
from order_tracking.resources.spark import local_spark_config
from order_tracking_tests.databricks_standin.operator import materialize_command
from order_tracking_tests.gcs_emulator import GcsEmulator
from order_tracking_tests.helpers import SECRET_MARKERS

# Property examples run real Spark jobs (~30 s each): few in the suite, many on demand with
# HYPOTHESIS_PROFILE=thorough (`make test-thorough`; HYPOTHESIS_MAX_EXAMPLES changes its 200).
settings.register_profile("default", max_examples=3)
settings.register_profile("thorough", max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "200")))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


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
        "landing": LandingZone(uri=str(landing_dir)),
        "lakehouse": Lakehouse(uri=str(lakehouse_dir)),
    }


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        yield instance


@pytest.fixture(scope="session")
def gcs_emulator():
    emulator = GcsEmulator().start()
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = emulator.url
    yield emulator
    emulator.stop()
    if previous is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = previous


@pytest.fixture
def bucket(gcs_emulator, request):
    """A fresh bucket on the emulator for each test."""
    from google.cloud import storage

    client = storage.Client(project="test")
    name = "landing-" + "".join(c for c in request.node.name.lower() if c.isalnum())[:40]
    return client.create_bucket(name)


@pytest.fixture(scope="session")
def cli_materialization(tmp_path_factory):
    """One `dagster asset materialize` of 2023-01-05 through the CLI, configured only by
    environment variables (secrets included); returns the completed process and its folders."""
    root = tmp_path_factory.mktemp("cli")
    folders = {name: root / name for name in ("landing", "lakehouse", "home", "data")}
    for name in ("landing", "home"):
        folders[name].mkdir()
    sample = Path(__file__).parents[1] / "order_tracking" / "sample_data" / "order_tracking_2023_01_05.csv"
    (folders["landing"] / sample.name).write_bytes(sample.read_bytes())
    env = os.environ | SECRET_MARKERS | {
        "DAGSTER_HOME": str(folders["home"]),
        "ORDER_TRACKING_LANDING_URI": str(folders["landing"]),
        "ORDER_TRACKING_LAKEHOUSE_URI": str(folders["lakehouse"]),
        "ORDER_TRACKING_DATA_DIR": str(folders["data"]),
    }
    completed = subprocess.run(
        materialize_command("2023-01-05", select="raw_order_files,staged_orders,order_tracking"),
        env=env, cwd=root, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    return completed, folders
