"""The lakehouse root: the raw zone (original bytes of every file) and the Delta tables."""

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from dagster import ConfigurableResource
from pydantic import Field

from order_tracking import settings
from order_tracking.resources.landing import CHUNK, md5_of

STAGED_ORDERS = "staged_orders"
ORDER_TRACKING = "order_tracking"
QUARANTINED_ORDERS = "quarantined_orders"
RAW_FILE_LEDGER = "raw_file_ledger"


class LocalLakehouse(ConfigurableResource):
    """A lakehouse rooted in a local folder: Delta tables at <root>/<table>, raw files under
    <root>/raw/dt=YYYY-MM-DD/."""

    uri: str | None = Field(
        default=None, description="Lakehouse root; defaults to $ORDER_TRACKING_LAKEHOUSE_URI."
    )

    @property
    def root(self) -> Path:
        return Path(self.uri or settings.lakehouse_uri()).expanduser().resolve()

    def table_uri(self, table: str) -> str:
        return str(self.root / table)

    def uri_of(self, relpath: str) -> str:
        return str(self.root / relpath)

    def raw_md5(self, relpath: str) -> str | None:
        path = self.root / relpath
        if not path.is_file():
            return None
        with path.open("rb") as stream:
            return md5_of(stream)[0]

    def write_raw(self, relpath: str, source: BinaryIO) -> tuple[str, int]:
        """Write bytes under a fresh name, fsync, then link it into place, so a raw file is either
        complete or absent. Never replaces an existing raw file."""
        target = self.root / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        digest, size = hashlib.md5(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.link(temp, target)  # fails if the target exists: raw files are never overwritten
        finally:
            os.unlink(temp)
        return digest.hexdigest(), size
