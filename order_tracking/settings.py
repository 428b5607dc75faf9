"""Where things live, from the environment; read when a run needs it, never at import time.

| variable                       | default                          |
|--------------------------------|----------------------------------|
| ORDER_TRACKING_DATA_DIR        | ./.order_tracking                |
| ORDER_TRACKING_LANDING_URI     | $ORDER_TRACKING_DATA_DIR/landing |
| ORDER_TRACKING_LAKEHOUSE_URI   | $ORDER_TRACKING_DATA_DIR/lakehouse |
| ORDER_TRACKING_IVY_DIR         | ~/.cache/order_tracking/ivy      |
| ORDER_TRACKING_SPARK_REMOTE    | (the local warm engine)          |
"""

import os
from pathlib import Path

# A Spark Connect URL (sc://…) that runs attach to instead of the local warm engine.
SPARK_REMOTE = "ORDER_TRACKING_SPARK_REMOTE"


def data_dir() -> Path:
    return Path(os.environ.get("ORDER_TRACKING_DATA_DIR") or ".order_tracking").resolve()


def landing_uri() -> str:
    return os.environ.get("ORDER_TRACKING_LANDING_URI") or str(data_dir() / "landing")


def lakehouse_uri() -> str:
    return os.environ.get("ORDER_TRACKING_LAKEHOUSE_URI") or str(data_dir() / "lakehouse")


def ivy_dir() -> Path:
    default = Path.home() / ".cache" / "order_tracking" / "ivy"
    return Path(os.environ.get("ORDER_TRACKING_IVY_DIR") or default).resolve()
