"""The operator's side of a stand-in session: the databricks environment's variables and the
`dagster` CLI, shared by the tests and `make demo-databricks`."""

import os
import subprocess
import sys
from pathlib import Path

from order_tracking.assets.pipeline import DAILY_ASSETS

DAGSTER = str(Path(sys.executable).parent / "dagster")
# The day's pipeline, as the README's command names it. Not "*": that would also select the
# unpartitioned order_tracking_compaction, which a partitioned materialization cannot include.
PIPELINE = ",".join(DAILY_ASSETS)


def databricks_env(host: str, token: str, root: Path, **extra: str) -> dict[str, str]:
    """Only what the README documents for the databricks environment, plus DAGSTER_HOME; nothing
    of this process's own ORDER_TRACKING_* or DATABRICKS_* settings leaks in."""
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("ORDER_TRACKING_", "DATABRICKS_"))
    }
    (root / "home").mkdir(parents=True, exist_ok=True)
    return (
        base
        | {
            "DAGSTER_HOME": str(root / "home"),
            "ORDER_TRACKING_ENV": "databricks",
            "DATABRICKS_HOST": host,
            "DATABRICKS_TOKEN": token,
            "ORDER_TRACKING_LANDING_URI": str(root / "landing"),
            "ORDER_TRACKING_LAKEHOUSE_URI": str(root / "lakehouse"),
            "ORDER_TRACKING_DATABRICKS_POLL_SECONDS": "1",
        }
        | extra
    )


def materialize_command(partition: str, select: str = PIPELINE) -> list[str]:
    """One day (`2023-01-05`), or a range of days in one run (`2023-01-01...2023-01-05`)."""
    option = "--partition-range" if "..." in partition else "--partition"
    return [DAGSTER, "asset", "materialize", "-m", "order_tracking.definitions", "--select", select, option, partition]


def materialize(env: dict, partition: str, select: str = PIPELINE) -> subprocess.CompletedProcess:
    return subprocess.run(
        materialize_command(partition, select),
        env=env,
        cwd=env["DAGSTER_HOME"],
        capture_output=True,
        text=True,
        timeout=900,
    )
