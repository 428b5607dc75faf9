"""The one place that decides which environment this process deploys."""

import os
from enum import Enum


class Environment(str, Enum):
    LOCAL = "local"  # local Spark + Delta, local landing folder, no-op step launcher


def current_environment() -> Environment:
    """ORDER_TRACKING_ENV, default local. An unknown name is an error, not a silent fallback."""
    name = os.environ.get("ORDER_TRACKING_ENV", Environment.LOCAL.value)
    try:
        return Environment(name)
    except ValueError:
        known = ", ".join(e.value for e in Environment)
        raise ValueError(f"ORDER_TRACKING_ENV={name!r} is not one of: {known}") from None
