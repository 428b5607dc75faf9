"""The lakehouse root: the raw zone (original bytes of every file) and the Delta tables.

`ORDER_TRACKING_LAKEHOUSE_URI` is a local folder (laptop, CI) or `gs://bucket/prefix`
(production, where Spark reads and writes gs:// through the cluster's GCS connector).
"""

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from order_tracking import settings
from order_tracking.resources.landing import (
    CHUNK,
    GcsPrefix,
    LandedFile,
    LandingZone,
    SourceChanged,
    gcs_client,
    md5_hex,
    md5_of,
    split_gs_uri,
)

if TYPE_CHECKING:  # the catalog imports Spark; a type is all this module needs of it
    from order_tracking.catalog import Table


class RawPathTaken(Exception):
    """The raw path was free when chosen and is not any more (another run of the same day)."""


class Lakehouse(ConfigurableResource):
    """Delta tables at <root>/<table>; raw files under <root>/raw/dt=YYYY-MM-DD/."""

    uri: str | None = Field(
        default=None, description="Lakehouse root; defaults to $ORDER_TRACKING_LAKEHOUSE_URI."
    )
    gcp_project: str | None = Field(default=None, description="GCP project for a gs:// root.")

    @property
    def root_uri(self) -> str:
        uri = self.uri or settings.lakehouse_uri()
        if uri.startswith("gs://"):
            return uri.rstrip("/")
        return str(Path(uri).expanduser().resolve())

    @property
    def on_gcs(self) -> bool:
        return self.root_uri.startswith("gs://")

    def table_uri(self, table: "Table") -> str:
        """Where a table of the catalog (order_tracking/catalog.py) lives."""
        return f"{self.root_uri}/{table.name}"

    def uri_of(self, relpath: str) -> str:
        return f"{self.root_uri}/{relpath}"

    _client: Any = PrivateAttr(default=None)

    def _blob(self, relpath: str):
        if self._client is None:
            self._client = gcs_client(self.gcp_project)
        bucket, prefix = split_gs_uri(self.root_uri)
        return self._client.bucket(bucket).blob(prefix + relpath)

    def raw_md5(self, relpath: str) -> str | None:
        """md5 (hex) of an existing raw file, None when there is none."""
        if self.on_gcs:
            blob = self._blob(relpath)
            if not blob.exists():
                return None
            blob.reload()
            return md5_hex(blob.md5_hash)
        path = Path(self.root_uri) / relpath
        if not path.is_file():
            return None
        with path.open("rb") as stream:
            return md5_of(stream)[0]

    def store_raw(self, relpath: str, landing: LandingZone, file: LandedFile) -> tuple[str, int]:
        """Copy one landed file to a raw path that must not exist yet; returns (md5, size).

        GCS to GCS is a server-side rewrite pinned to the landed generation; anything else
        streams the bytes. Raw files are never overwritten (if_generation_match=0 / link)."""
        if self.on_gcs and isinstance(landing.store, GcsPrefix):
            return self._rewrite_from(landing.store, file, relpath)
        with landing.open(file) as source:
            return self._upload(relpath, source) if self.on_gcs else self._write_local(relpath, source)

    def _rewrite_from(self, landing: GcsPrefix, file: LandedFile, relpath: str) -> tuple[str, int]:
        from google.api_core.exceptions import PreconditionFailed

        target, token = self._blob(relpath), None
        try:
            while True:
                token, _, _ = target.rewrite(
                    landing.pinned_blob(file),
                    token=token,
                    if_generation_match=0,
                    if_source_generation_match=int(file.generation),
                )
                if token is None:
                    break
        except PreconditionFailed as error:
            if target.exists():
                raise RawPathTaken(relpath) from error
            raise SourceChanged(file.name) from error
        target.reload()
        if target.md5_hash is None:  # composite objects carry no md5: hash the copy itself
            with target.open("rb") as copied:
                return md5_of(copied)
        return md5_hex(target.md5_hash), target.size

    def _upload(self, relpath: str, source) -> tuple[str, int]:
        from google.api_core.exceptions import PreconditionFailed

        target = self._blob(relpath)
        try:
            target.upload_from_file(source, if_generation_match=0)
        except PreconditionFailed as error:
            raise RawPathTaken(relpath) from error
        target.reload()
        return md5_hex(target.md5_hash), target.size

    def _write_local(self, relpath: str, source) -> tuple[str, int]:
        """Write under a fresh name, fsync, then link into place: a raw file is complete or absent."""
        target = Path(self.root_uri) / relpath
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
        except FileExistsError as error:
            raise RawPathTaken(relpath) from error
        finally:
            os.unlink(temp)
        return digest.hexdigest(), size
