"""Secrets reach the code only through the environment, and never leave it: not into Dagster's
event log or run storage, not into captured stdout/stderr, not into the tables."""

import subprocess
from pathlib import Path

import pytest
from dagster import ConfigurableResource, EnvVar

from order_tracking.environment import Environment
from order_tracking.resources import resources_for
from order_tracking_tests.helpers import SECRET_MARKERS

SECRET_FIELD_WORDS = ("token", "secret", "password", "credential", "private")
REPO = Path(__file__).parents[1]


def test_secret_fields_are_bound_to_environment_variables(monkeypatch):
    monkeypatch.setenv("DATABRICKS_HOST", "https://example.cloud.databricks.com")
    monkeypatch.setenv("DATABRICKS_TOKEN", SECRET_MARKERS["DATABRICKS_TOKEN"])
    checked = []
    for environment in Environment:
        for key, resource in resources_for(environment).items():
            if not isinstance(resource, ConfigurableResource):
                continue
            for name in type(resource).model_fields:
                value = getattr(resource, name)
                # Strings only: `secrets` maps variable names to secret-scope keys, never values.
                if isinstance(value, str) and any(w in name.lower() for w in SECRET_FIELD_WORDS):
                    checked.append(f"{environment.value}.{key}.{name}")
                    assert isinstance(value, EnvVar), f"{checked[-1]} holds a literal value"
    assert "databricks.step_launcher.token" in checked


def test_secret_values_appear_in_no_log_output_or_table(cli_materialization):
    completed, folders = cli_materialization
    assert completed.returncode == 0, completed.stderr[-3000:]
    outputs = {"stdout": completed.stdout, "stderr": completed.stderr}
    # Every file the run wrote: run and event-log storage, captured step output, the lakehouse.
    written = [p for folder in folders.values() for p in folder.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in written) and any("storage" in p.parts for p in written)
    for secret in SECRET_MARKERS.values():
        for name, text in outputs.items():
            assert secret not in text, f"a secret is in the run's {name}"
        for path in written:
            assert secret.encode() not in path.read_bytes(), f"a secret is in {path}"


def test_local_data_and_caches_are_git_ignored():
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    local_paths = [
        ".order_tracking/lakehouse/order_tracking/part-0.parquet",
        ".order_tracking/dagster_home/storage/run.db",
        ".venv/bin/python",
        "spark-warehouse/t/part-0.parquet",
        "metastore_db/log",
        "derby.log",
        ".hypothesis/examples/x",
        "bench/data/orders.csv",
    ]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *local_paths],
        cwd=REPO, capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    assert sorted(ignored) == sorted(local_paths)
