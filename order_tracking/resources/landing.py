"""The landing zone: where order files arrive. One small interface (list, open, fingerprint,
remove) so the sensor and `raw_order_files` are the same code for a local folder and a bucket."""

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from dagster import ConfigurableResource
from pydantic import Field

from order_tracking import settings

CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class LandedFile:
    name: str  # relative to the landing root, "/"-separated
    size: int
    landed_at: datetime  # the landing order: ties between rows go to the later-landed file
    generation: str  # changes whenever the object is replaced


def md5_of(stream: BinaryIO) -> tuple[str, int]:
    digest, size = hashlib.md5(), 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


class LocalLandingZone(ConfigurableResource):
    """Order files landing in a local folder: the laptop/CI stand-in for the GCS bucket."""

    uri: str | None = Field(
        default=None, description="Landing folder; defaults to $ORDER_TRACKING_LANDING_URI."
    )

    @property
    def root(self) -> Path:
        return Path(self.uri or settings.landing_uri()).expanduser().resolve()

    @property
    def location(self) -> str:
        return str(self.root)

    def list_files(self) -> list[LandedFile]:
        """Every file waiting in landing (processed files have left it), oldest first."""
        if not self.root.is_dir():
            return []
        found = []
        for folder, _, names in os.walk(self.root):
            for name in names:
                path = Path(folder) / name
                try:
                    stat = path.stat()
                except FileNotFoundError:  # removed while we listed
                    continue
                found.append(
                    LandedFile(
                        name=path.relative_to(self.root).as_posix(),
                        size=stat.st_size,
                        landed_at=datetime.fromtimestamp(stat.st_mtime_ns / 1e9, tz=timezone.utc),
                        generation=f"{stat.st_mtime_ns}-{stat.st_size}",
                    )
                )
        return sorted(found, key=lambda f: (f.landed_at, f.name))

    def open(self, file: LandedFile) -> BinaryIO:
        return (self.root / file.name).open("rb")

    def md5(self, file: LandedFile) -> str:
        with self.open(file) as stream:
            return md5_of(stream)[0]

    def is_current(self, file: LandedFile) -> bool:
        path = self.root / file.name
        try:
            stat = path.stat()
        except FileNotFoundError:
            return False
        return f"{stat.st_mtime_ns}-{stat.st_size}" == file.generation

    def remove(self, file: LandedFile) -> bool:
        """Remove a processed file unless it was replaced meanwhile (then a later run takes it)."""
        if not self.is_current(file):
            return False
        (self.root / file.name).unlink()
        return True
