"""raw_order_files with a gs:// landing zone on fake-gcs-server: the same asset code as the local
folder, with generation-pinned reads and deletes; the raw zone on a local lakehouse (download)
and on a gs:// lakehouse (server-side copy)."""

import hashlib

import pytest

from dagster import materialize

from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.landing import LandingZone, SourceChanged
from order_tracking.sample_data import sample_files
from order_tracking_tests.helpers import PIPELINE, business_rows

PREFIX = "incoming"
DAY5 = sample_files()[4]


def landing(bucket) -> LandingZone:
    return LandingZone(uri=f"gs://{bucket.name}/{PREFIX}")


def test_pipeline_runs_from_a_bucket_into_a_local_lakehouse(spark, bucket, local_resources, lakehouse_dir):
    bucket.blob(f"{PREFIX}/{DAY5.name}").upload_from_filename(str(DAY5))
    bucket.blob(f"{PREFIX}/_SUCCESS").upload_from_string(b"")

    result = materialize(
        PIPELINE, partition_key="2023-01-05", resources={**local_resources, "landing": landing(bucket)}
    )

    assert result.success
    raw = lakehouse_dir / "raw/dt=2023-01-05" / DAY5.name
    assert raw.read_bytes() == DAY5.read_bytes()
    assert [b.name for b in bucket.list_blobs(prefix=PREFIX)] == [f"{PREFIX}/_SUCCESS"]
    table = spark.read.format("delta").load(str(lakehouse_dir / "order_tracking"))
    assert len(business_rows(table)) == 23


def test_raw_copy_is_server_side_when_the_lakehouse_is_on_gcs(bucket):
    content = DAY5.read_bytes()
    blob = bucket.blob(f"{PREFIX}/{DAY5.name}")
    blob.upload_from_string(content)
    zone, lakehouse = landing(bucket), Lakehouse(uri=f"gs://{bucket.name}/lake")
    [file] = zone.list_files()

    md5, size = lakehouse.store_raw(f"raw/dt=2023-01-05/{DAY5.name}", zone, file)

    assert (md5, size) == (hashlib.md5(content).hexdigest(), len(content))
    copied = bucket.blob(f"lake/raw/dt=2023-01-05/{DAY5.name}").download_as_bytes()
    assert copied == content
    assert lakehouse.raw_md5(f"raw/dt=2023-01-05/{DAY5.name}") == md5


def test_an_object_replaced_after_listing_is_not_deleted(bucket):
    bucket.blob(f"{PREFIX}/{DAY5.name}").upload_from_string(b"first")
    zone = landing(bucket)
    [listed] = zone.list_files()
    bucket.blob(f"{PREFIX}/{DAY5.name}").upload_from_string(b"second")  # new generation

    assert zone.remove(listed) is False
    assert bucket.blob(f"{PREFIX}/{DAY5.name}").download_as_bytes() == b"second"
    with pytest.raises(SourceChanged):  # reads are pinned: never the newer bytes under the old name
        zone.open(listed)
