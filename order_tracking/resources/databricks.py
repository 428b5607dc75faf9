"""The production `step_launcher`: a run's step runs on a Databricks cluster on GCP.

dagster-databricks' launcher does the protocol work: it uploads the step to DBFS, submits a
one-time run (`runs/submit`), polls it, and replays the remote step's events into this Dagster
instance. Around it this module adds what production needs and the launcher leaves open: a GCP
cluster spec, the cluster's libraries derived from our own pinned dependencies, our settings
forwarded to the cluster, a code zip holding only our package, and a fast, clear failure when the
workspace cannot be reached (the SDK otherwise retries a refused connection for five minutes).

Upstream supersedes step launchers with Dagster Pipes; the asset code only sees the resource key
`step_launcher`, so a Pipes-based runner can replace this module without touching it.
"""

import hashlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dagster import ConfigurableResource, EnvVar, Failure, InitResourceContext, StepLauncher
from dagster_databricks import DatabricksPySparkStepLauncher
from packaging.requirements import Requirement
from pydantic import Field

import order_tracking
from order_tracking.environment import Environment

DISTRIBUTION = "order_tracking"
# The Databricks Runtime brings Spark and Delta; installing PySpark over it breaks the cluster.
PROVIDED_BY_RUNTIME = {"pyspark", "delta-spark"}
# Only the Dagster host serves the UI.
HOST_ONLY = {"dagster-webserver"}
# What a remote step needs to find the same data; everything else (data dir, Ivy cache, sensor
# switches) describes this machine only.
FORWARDED_SETTINGS = (
    "ORDER_TRACKING_LANDING_URI",
    "ORDER_TRACKING_LAKEHOUSE_URI",
    "GOOGLE_CLOUD_PROJECT",
)
DBR_17_LTS = "17.3.x-scala2.13"  # Databricks Runtime 17.3 LTS: Spark 4.0, Scala 2.13


def cluster_libraries() -> list[dict[str, Any]]:
    """The cluster's PyPI libraries: our pinned runtime dependencies, read from the installed
    distribution (pyproject.toml stays the only list)."""
    libraries = []
    for line in metadata.requires(DISTRIBUTION) or []:
        requirement = Requirement(line)
        if requirement.marker is not None:  # extras such as [test], platform-specific pins
            continue
        if requirement.name.lower().replace("_", "-") in PROVIDED_BY_RUNTIME | HOST_ONLY:
            continue
        libraries.append({"pypi": {"package": str(requirement)}})
    return libraries


def forwarded_environment() -> dict[str, str]:
    """Environment variables set on the cluster before a step runs there."""
    forwarded = {name: os.environ[name] for name in FORWARDED_SETTINGS if os.environ.get(name)}
    return forwarded | {"ORDER_TRACKING_ENV": Environment.DATABRICKS.value}


@contextmanager
def package_snapshot() -> Iterator[str]:
    """A folder holding only our package. The launcher zips a folder whole, and the project root
    also holds the virtualenv, local data and tests."""
    package = Path(order_tracking.__file__).resolve().parent
    with tempfile.TemporaryDirectory(prefix="order_tracking_code_") as root:
        shutil.copytree(
            package, Path(root) / package.name, ignore=shutil.ignore_patterns("__pycache__")
        )
        yield root


def check_reachable(host: str, timeout_seconds: float) -> None:
    """Fail in seconds with a message naming the host, rather than after the SDK's retries."""
    url = urlsplit(host if "://" in host else f"https://{host}")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout_seconds).close()
    except OSError as error:
        raise Failure(
            description=(
                f"Databricks workspace {host} is unreachable ({error}). Check DATABRICKS_HOST and "
                "that this machine can reach the workspace."
            ),
            allow_retries=False,
        ) from None


class DatabricksLauncher(ConfigurableResource, StepLauncher):
    """Runs a step as a one-time Databricks run on a new job cluster (or an existing one). The
    day's three assets are one step (assets/pipeline.py): one cluster start per Dagster run."""

    host: str = Field(description="Workspace URL, e.g. https://1234567890.1.gcp.databricks.com")
    token: str | None = Field(default=None, description="Personal access token.")
    client_id: str | None = Field(default=None, description="OAuth M2M service principal id.")
    client_secret: str | None = Field(default=None, description="OAuth M2M secret.")
    spark_version: str = Field(default=DBR_17_LTS, description="Databricks Runtime version key.")
    node_type_id: str = Field(default="n2-highmem-4", description="GCP node type of all nodes.")
    instance_pool_id: str | None = Field(
        default=None,
        description="Take the job cluster's nodes from this instance pool (idle VMs kept warm: "
        "a start in about a minute instead of several); node_type_id is then the pool's.",
    )
    num_workers: int = Field(default=2, description="Workers (autoscale minimum with max_workers).")
    max_workers: int | None = Field(default=None, description="Autoscale up to this many workers.")
    google_service_account: str | None = Field(
        default=None, description="Service account the cluster uses for GCS (gcp_attributes)."
    )
    existing_cluster_id: str | None = Field(
        default=None, description="Run on this all-purpose cluster instead of a new job cluster."
    )
    secret_scope: str | None = Field(default=None, description="Scope read by `secrets`.")
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variable on the cluster -> key in secret_scope.",
    )
    env_variables: dict[str, str] = Field(
        default_factory=dict, description="Extra environment variables for the remote step."
    )
    staging_prefix: str = Field(default="/dagster_staging", description="DBFS folder for steps.")
    poll_interval_seconds: int = Field(default=10, description="Run state polling interval.")
    max_wait_seconds: int = Field(default=6 * 3600, description="Fail a step running longer.")
    connect_timeout_seconds: float = Field(default=10.0, description="Reachability check.")

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if bool(self.token) == bool(self.client_id and self.client_secret):
            raise Failure(
                "Databricks credentials: set DATABRICKS_TOKEN, or DATABRICKS_CLIENT_ID and "
                "DATABRICKS_CLIENT_SECRET (exactly one of the two)."
            )
        if self.secrets and not self.secret_scope:
            raise Failure("Databricks secrets are configured without a secret scope.")

    def cluster_spec(self) -> dict[str, Any]:
        if self.existing_cluster_id:
            return {"existing": self.existing_cluster_id}
        size: dict[str, Any] = {"num_workers": self.num_workers}
        if self.max_workers is not None:
            size = {"autoscale": {"min_workers": self.num_workers, "max_workers": self.max_workers}}
        nodes = (
            {"instance_pool_id": self.instance_pool_id}
            if self.instance_pool_id
            else {"node_types": {"node_type_id": self.node_type_id}}
        )
        new_cluster: dict[str, Any] = {
            "spark_version": self.spark_version,
            "nodes": nodes,
            "size": size,
            "custom_tags": {"project": "order_tracking"},
        }
        if self.google_service_account:
            # The launcher's own `storage` block knows only S3 and ADLS; on GCP, bucket access is
            # the cluster's service account.
            new_cluster["gcp_attributes"] = {"google_service_account": self.google_service_account}
        return {"new": new_cluster}

    def launch_step(self, step_context) -> Iterator:
        check_reachable(self.host, self.connect_timeout_seconds)
        run_id, step_key = step_context.run_id, step_context.step.key
        attempt = step_context.previous_attempt_count
        run_config = {
            "run_name": f"order_tracking {step_key} (dagster run {run_id[:8]})",
            "cluster": self.cluster_spec(),
            "libraries": cluster_libraries(),
            # Makes the SDK's retry of a submit safe: Databricks returns the same run.
            "idempotency_token": hashlib.sha256(
                f"{run_id}/{step_key}/{attempt}".encode()
            ).hexdigest()[:64],
            "timeout_seconds": self.max_wait_seconds,
        }
        with package_snapshot() as code_root:
            launcher = DatabricksPySparkStepLauncher(
                run_config=run_config,
                permissions={},
                databricks_host=self.host,
                databricks_token=self.token,
                oauth_credentials=(
                    {"client_id": self.client_id, "client_secret": self.client_secret}
                    if self.client_id
                    else None
                ),
                secrets_to_env_variables=[
                    {"name": name, "key": key, "scope": self.secret_scope}
                    for name, key in self.secrets.items()
                ],
                env_variables=forwarded_environment() | self.env_variables,
                staging_prefix=self.staging_prefix,
                wait_for_logs=False,
                max_completion_wait_time_seconds=self.max_wait_seconds,
                poll_interval_sec=self.poll_interval_seconds,
                local_pipeline_package_path=code_root,
                # Per-poll debug lines would flood the run's log in the Dagster UI.
                verbose_logs=False,
            )
            yield from launcher.launch_step(step_context)


# Optional settings: environment variable -> (field, type). Unset ones keep the field default.
OPTIONAL_SETTINGS = {
    "ORDER_TRACKING_DATABRICKS_SPARK_VERSION": ("spark_version", str),
    "ORDER_TRACKING_DATABRICKS_NODE_TYPE": ("node_type_id", str),
    "ORDER_TRACKING_DATABRICKS_INSTANCE_POOL_ID": ("instance_pool_id", str),
    "ORDER_TRACKING_DATABRICKS_WORKERS": ("num_workers", int),
    "ORDER_TRACKING_DATABRICKS_MAX_WORKERS": ("max_workers", int),
    "ORDER_TRACKING_DATABRICKS_SERVICE_ACCOUNT": ("google_service_account", str),
    "ORDER_TRACKING_DATABRICKS_CLUSTER_ID": ("existing_cluster_id", str),
    "ORDER_TRACKING_DATABRICKS_SECRET_SCOPE": ("secret_scope", str),
    "ORDER_TRACKING_DATABRICKS_STAGING_PREFIX": ("staging_prefix", str),
    "ORDER_TRACKING_DATABRICKS_POLL_SECONDS": ("poll_interval_seconds", int),
    "ORDER_TRACKING_DATABRICKS_MAX_WAIT_SECONDS": ("max_wait_seconds", int),
}


def databricks_launcher_from_env() -> DatabricksLauncher:
    """The launcher configured by environment variables (README, "Production on Databricks").
    Values stay EnvVar references: resolved when a run starts, never stored in run config."""
    fields: dict[str, Any] = {"host": EnvVar("DATABRICKS_HOST")}
    if "DATABRICKS_CLIENT_ID" in os.environ:
        fields |= {
            "client_id": EnvVar("DATABRICKS_CLIENT_ID"),
            "client_secret": EnvVar("DATABRICKS_CLIENT_SECRET"),
        }
    else:
        fields["token"] = EnvVar("DATABRICKS_TOKEN")
    for variable, (field, kind) in OPTIONAL_SETTINGS.items():
        if variable in os.environ:
            fields[field] = EnvVar.int(variable) if kind is int else EnvVar(variable)
    # Names only ("ENV_NAME=secret-key,..."), never values: values stay in the secret scope.
    pairs = os.environ.get("ORDER_TRACKING_DATABRICKS_SECRETS", "")
    fields["secrets"] = dict(
        (name.strip(), key.strip())
        for name, key in (p.split("=", 1) for p in pairs.split(",") if "=" in p)
    )
    return DatabricksLauncher(**fields)
