"""The code location loads, wires the same resource keys everywhere, and runs from the CLI."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey

from order_tracking.assets.common import RESOURCE_KEYS
from order_tracking.definitions import defs
from order_tracking.environment import Environment, current_environment
from order_tracking.resources import resources_for

ASSETS = ["raw_order_files", "staged_orders", "order_tracking"]


def test_definitions_load_with_the_three_partitioned_assets():
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == set(ASSETS)
    for name in ASSETS:
        node = graph.get(AssetKey(name))
        assert node.partitions_def.get_first_partition_key() == "2023-01-01"
    assert defs.resolve_job_def("order_tracking_job")


def test_every_asset_declares_the_production_resource_keys():
    for name in ASSETS:
        assert defs.resolve_assets_def(name).required_resource_keys >= RESOURCE_KEYS
    assert set(resources_for(Environment.LOCAL)) == RESOURCE_KEYS


def test_order_tracking_writes_are_serialized_by_a_pool():
    assert defs.resolve_assets_def("order_tracking").op.pool == "order_tracking_writer"


def test_unknown_environment_is_an_error(monkeypatch):
    monkeypatch.setenv("ORDER_TRACKING_ENV", "prod-ish")
    with pytest.raises(ValueError, match="ORDER_TRACKING_ENV='prod-ish'"):
        current_environment()


def test_cli_materializes_a_partition_with_only_environment_variables(tmp_path):
    """The operators' scripting contract, exactly as the README shows it."""
    landing, lakehouse = tmp_path / "landing", tmp_path / "lakehouse"
    landing.mkdir()
    sample = Path(__file__).parents[1] / "order_tracking" / "sample_data" / "order_tracking_2023_01_05.csv"
    (landing / sample.name).write_bytes(sample.read_bytes())
    (tmp_path / "home").mkdir()
    env = os.environ | {
        "DAGSTER_HOME": str(tmp_path / "home"),
        "ORDER_TRACKING_LANDING_URI": str(landing),
        "ORDER_TRACKING_LAKEHOUSE_URI": str(lakehouse),
        "ORDER_TRACKING_DATA_DIR": str(tmp_path / "data"),
    }
    dagster = Path(sys.executable).parent / "dagster"
    completed = subprocess.run(
        [str(dagster), "asset", "materialize", "-m", "order_tracking.definitions",
         "--select", "raw_order_files,staged_orders,order_tracking", "--partition", "2023-01-05"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "RUN_SUCCESS" in completed.stderr
    assert (lakehouse / "order_tracking" / "_delta_log").is_dir()
    assert list(landing.iterdir()) == []
