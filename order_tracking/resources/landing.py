"""The landing zone: where order files arrive. One small interface (list, open, fingerprint,
remove) so the sensor and `raw_order_files` are the same code for a local folder and a bucket.

`ORDER_TRACKING_LANDING_URI` picks the backend at run time: `gs://bucket/prefix` is a GCS prefix
(through dagster-gcp's GCSResource client, credentials the standard Google way), anything else a
local folder.
"""

import base64
import hashlib
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Protocol

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from order_tracking import settings

CHUNK = 8 * 1024 * 1024


class SourceChanged(Exception):
    """The landed object was replaced or removed since it was listed; a later run takes it."""


@dataclass(frozen=True)
class LandedFile:
    name: str  # relative to the landing root, "/"-separated
    size: int
    landed_at: datetime  # the landing order: ties between rows go to the later-landed file
    generation: str  # changes whenever the object is replaced
    md5: str | None = None  # hex, when the store already knows it


def md5_of(stream: BinaryIO) -> tuple[str, int]:
    digest, size = hashlib.md5(), 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def md5_hex(md5_base64: str | None) -> str | None:
    """GCS reports md5 as base64 (and none for composite objects); the ledger keeps hex."""
    return base64.b64decode(md5_base64).hex() if md5_base64 else None


def gcs_client(project: str | None):
    """A google-cloud-storage client made by dagster-gcp's GCSResource. Imported here, not at the
    top: dagster-gcp's package import pulls in BigQuery, pandas and Dataproc (half the definitions'
    import time), and every run process loads these definitions before its first step, on GCS or
    not."""
    from dagster_gcp import GCSResource

    return GCSResource(project=project).get_client()


def split_gs_uri(uri: str) -> tuple[str, str]:
    """gs://bucket/some/prefix -> ("bucket", "some/prefix/") (prefix "" for a whole bucket)."""
    bucket, _, prefix = uri.removeprefix("gs://").partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


class LandingStore(Protocol):
    location: str

    def list_files(self) -> list[LandedFile]: ...
    def open(self, file: LandedFile) -> BinaryIO: ...
    def is_current(self, file: LandedFile) -> bool: ...
    def remove(self, file: LandedFile) -> bool: ...


class LocalFolder:
    def __init__(self, root: Path):
        self.root = root
        self.location = str(root)

    def list_files(self) -> list[LandedFile]:
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
        return found

    def open(self, file: LandedFile) -> BinaryIO:
        return (self.root / file.name).open("rb")

    def is_current(self, file: LandedFile) -> bool:
        try:
            stat = (self.root / file.name).stat()
        except FileNotFoundError:
            return False
        return f"{stat.st_mtime_ns}-{stat.st_size}" == file.generation

    def remove(self, file: LandedFile) -> bool:
        if not self.is_current(file):
            return False
        (self.root / file.name).unlink()
        return True


class GcsPrefix:
    """Objects under gs://bucket/prefix. Generations pin every read and delete, so an object
    re-uploaded while we work on it is never deleted unprocessed."""

    def __init__(self, client, uri: str):
        from google.api_core.exceptions import NotFound, PreconditionFailed

        self._gone = (NotFound, PreconditionFailed)
        self.client = client
        self.bucket_name, self.prefix = split_gs_uri(uri)
        self.bucket = client.bucket(self.bucket_name)
        self.location = f"gs://{self.bucket_name}/{self.prefix}"

    def blob_name(self, file: LandedFile) -> str:
        return self.prefix + file.name

    def list_files(self) -> list[LandedFile]:
        return [
            LandedFile(
                name=blob.name[len(self.prefix) :],
                size=blob.size,
                landed_at=blob.time_created,
                generation=str(blob.generation),
                md5=md5_hex(blob.md5_hash),
            )
            for blob in self.client.list_blobs(self.bucket_name, prefix=self.prefix)
            if not blob.name.endswith("/")  # "folder" placeholders
        ]

    def pinned_blob(self, file: LandedFile):
        return self.bucket.blob(self.blob_name(file), generation=int(file.generation))

    def open(self, file: LandedFile) -> BinaryIO:
        blob = self.pinned_blob(file)
        try:
            blob.reload()  # fail now, not mid-copy, when the listed generation is gone
        except self._gone as error:
            raise SourceChanged(file.name) from error
        return blob.open("rb")

    def is_current(self, file: LandedFile) -> bool:
        blob = self.bucket.get_blob(self.blob_name(file))
        return blob is not None and str(blob.generation) == file.generation

    def remove(self, file: LandedFile) -> bool:
        # The precondition is what makes this safe on GCS; the look first also keeps emulators
        # that ignore preconditions (fake-gcs-server does) from deleting a newer upload.
        if not self.is_current(file):
            return False
        try:
            self.bucket.delete_blob(self.blob_name(file), if_generation_match=int(file.generation))
        except self._gone:
            return False
        return True


class LandingZone(ConfigurableResource):
    """Where order files land: a local folder, or a GCS prefix for `gs://bucket/prefix`."""

    uri: str | None = Field(
        default=None, description="Landing location; defaults to $ORDER_TRACKING_LANDING_URI."
    )
    gcp_project: str | None = Field(default=None, description="GCP project for a gs:// landing.")

    _store: LandingStore | None = PrivateAttr(default=None)

    @property
    def store(self) -> LandingStore:
        if self._store is None:
            uri = self.uri or settings.landing_uri()
            if uri.startswith("gs://"):
                self._store = GcsPrefix(gcs_client(self.gcp_project), uri)
            else:
                self._store = LocalFolder(Path(uri).expanduser().resolve())
        return self._store

    @property
    def location(self) -> str:
        return self.store.location

    def list_files(self) -> list[LandedFile]:
        """Every file waiting in landing (processed files have left it), oldest first."""
        return sorted(self.store.list_files(), key=lambda f: (f.landed_at, f.name))

    def open(self, file: LandedFile) -> BinaryIO:
        return self.store.open(file)

    def md5(self, file: LandedFile) -> str:
        if file.md5:
            return file.md5
        with self.open(file) as stream:
            return md5_of(stream)[0]

    def remove(self, file: LandedFile) -> bool:
        """Remove a processed file unless it was replaced meanwhile (then a later run takes it)."""
        return self.store.remove(file)
