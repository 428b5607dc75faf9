"""The instance configurations we ship: the local dagster.yaml and the production example. Both
must pass Dagster's own validation, and both must keep what correctness and the run queue rely on."""

import shutil

import pytest
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes.config_class import class_from_code_pointer

from order_tracking_devtools.dagster_processes import ROOT

pytestmark = pytest.mark.quick  # the inner loop: make check

LOCAL = ROOT / "dagster.yaml"
PRODUCTION = ROOT / "deploy" / "dagster.production.yaml"


@pytest.fixture
def production_env(monkeypatch):
    for name in ["DAGSTER_PG_HOST", "DAGSTER_PG_DB", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD"]:
        monkeypatch.setenv(name, f"value-of-{name}")
    monkeypatch.setenv("DAGSTER_PG_PORT", "5432")
    monkeypatch.setenv("DAGSTER_COMPUTE_LOG_BUCKET", "order-tracking-logs")


@pytest.mark.parametrize("path", [LOCAL, PRODUCTION], ids=["local", "production"])
def test_instance_configuration_is_valid_and_keeps_the_pools_and_queue(path, tmp_path, production_env):
    shutil.copy(path, tmp_path / "dagster.yaml")

    config, _ = dagster_instance_config(str(tmp_path))

    # Each writer pool admits one step at a time; without a limit pools are unlimited.
    assert config["concurrency"]["pools"]["default_limit"] == 1
    runs = config["concurrency"]["runs"]
    assert runs["max_concurrent_runs"] >= 2
    assert {"key": "dagster/backfill", "limit": 1} in runs["tag_concurrency_limits"]
    # A killed run's pool slot is given back (test_production_instance.py shows the deadlock).
    assert config["run_monitoring"]["enabled"] and config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0


def test_production_instance_stores_in_postgres_from_the_environment(production_env):
    raw = yaml.safe_load(PRODUCTION.read_text())
    database = raw["storage"]["postgres"]["postgres_db"]
    # No secret or host written in the file: each comes from an environment variable.
    for field in ["hostname", "port", "db_name", "username", "password"]:
        assert set(database[field]) == {"env"}, field
    logs = raw["compute_logs"]
    manager = class_from_code_pointer(logs["module"], logs["class"])
    assert validate_config(manager.config_type(), logs["config"]).success


def test_the_production_extra_brings_the_postgres_storage():
    from importlib.metadata import requires

    production = [r for r in requires("order_tracking") if 'extra == "production"' in r]
    assert [r.split(";")[0].strip() for r in production] == ["dagster-postgres==0.29.27"]
