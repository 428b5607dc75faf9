"""The user's own five daily order files (2023-01-01 … 2023-01-05), shipped as sample data."""

import shutil
from importlib import resources
from pathlib import Path


def sample_files() -> list[Path]:
    folder = resources.files(__name__)
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".csv"))


def land_sample_files(landing: Path) -> list[Path]:
    """Copy the sample files into a landing folder one after another, in day order, so that their
    modification times (the local landing order) follow the days."""
    landing.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(source, landing / source.name)) for source in sample_files()]
