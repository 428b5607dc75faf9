"""Shared fixtures: one warm engine (a Spark Connect server with Delta) for the whole run, which
every test attaches to, in this process or in the processes it starts; per-test lakehouses."""

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings
from pyspark.sql import SparkSession

from order_tracking import engine as local_engine
from order_tracking.environment import Environment
from order_tracking.schema import STAGED_SCHEMA
from order_tracking.resources import SPARK_REMOTE, resources_for
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.landing import LandingZone
from order_tracking.resources.spark import connect
from order_tracking_devtools.databricks_standin.operator import materialize_command
from order_tracking_devtools.gcs_emulator import GcsEmulator
from order_tracking_tests.helpers import SECRET_MARKERS

# Property examples run real Spark jobs (~30 s each): few in the suite, many on demand with
# HYPOTHESIS_PROFILE=thorough (`make test-thorough`; HYPOTHESIS_MAX_EXAMPLES changes its 200).
settings.register_profile("default", max_examples=3)
settings.register_profile("thorough", max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "200")))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@dataclass(frozen=True)
class SuiteEngine:
    directory: Path
    endpoint: local_engine.Endpoint

    @property
    def url(self) -> str:
        return self.endpoint.url


@pytest.fixture(scope="session", autouse=True)
def engine(tmp_path_factory):
    """The suite's engine, started once and stopped at the end. Processes the tests start inherit
    ORDER_TRACKING_SPARK_REMOTE and attach to it too, so no test starts a JVM of its own (the
    Databricks stand-in's cluster excepted: a cluster gives a step a classic session). The
    workers of `make test` (pytest-xdist) share it: each holds it attached while it runs, and the
    last one to finish stops it."""
    base = tmp_path_factory.getbasetemp()
    directory = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "engine"
    previous = os.environ.get(SPARK_REMOTE)
    with local_engine.attached(directory) as endpoint:
        os.environ[SPARK_REMOTE] = endpoint.url
        yield SuiteEngine(directory, endpoint)
        # Nothing a test started may outlive the suite: a process still naming this worker's
        # folders (a CLI run, a daemon, a cluster driver, a compute-log tail) was left behind.
        left = wait_for_no_processes_naming(base, besides=directory)
        assert not left, "processes left running by the tests:\n" + "\n".join(left)
    if previous is None:
        os.environ.pop(SPARK_REMOTE, None)
    else:
        os.environ[SPARK_REMOTE] = previous
    local_engine.stop_unless_attached(directory)


def processes_naming(path: Path, besides: Path) -> list[str]:
    """Other processes whose command line names something under `path` but not under `besides`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # ended meanwhile
            continue
        if str(path) in command and str(besides) not in command:
            found.append(f"{proc.name}: {command.strip()}")
    return found


def wait_for_no_processes_naming(path: Path, besides: Path, seconds: float = 15) -> list[str]:
    """What processes_naming still finds after `seconds` (stopping processes get time to end)."""
    deadline = time.monotonic() + seconds
    while (left := processes_naming(path, besides)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


@pytest.fixture(scope="session")
def new_session(engine):
    """A new Spark session on the suite's engine, as another run would have (closed at the end)."""
    sessions = []

    def create() -> SparkSession:
        sessions.append(connect(engine.url))
        return sessions[-1]

    yield create
    for session in sessions:
        session.stop()


@pytest.fixture(scope="session")
def spark(new_session) -> SparkSession:
    return new_session()


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
        materialize_command("2023-01-05"),
        env=env, cwd=root, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    return completed, folders


@pytest.fixture
def orders(spark):
    """staged_orders rows as a DataFrame, from helpers.staged_order rows."""
    def build(*rows):
        return spark.createDataFrame(list(rows), STAGED_SCHEMA)

    return build
