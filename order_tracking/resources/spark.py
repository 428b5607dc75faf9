"""The run's Spark session, as a resource: a Spark Connect client of the local warm engine, or of
another Spark Connect server named by ORDER_TRACKING_SPARK_REMOTE."""

import os
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Protocol
from urllib.parse import urlparse

from dagster import ConfigurableResource, InitResourceContext, ResourceParam
from pydantic import Field, PrivateAttr
from pyspark.sql import SparkSession

from order_tracking import engine, settings


class SparkSessionSource(Protocol):
    """What an asset needs of the `pyspark` resource, whichever binds it: SparkConnect locally,
    dagster_pyspark's LazyPySparkResource on a Databricks cluster (the cluster's own session)."""

    @property
    def spark_session(self) -> SparkSession: ...


# The asset parameters of the two resources whose implementation differs by environment, typed
# by what the assets use of them.
SparkResource = ResourceParam[SparkSessionSource]
# Where a step runs: in process (None) locally, a Databricks cluster in production. The assets
# never call it; requiring it is what sends their step through it.
StepLauncherResource = ResourceParam[Any]


class SparkConnect(ConfigurableResource):
    """A Spark Connect session for the run, opened on first use and closed with the run.

    Closing interrupts whatever the session still runs: a cancelled run (Ctrl-C, terminated from
    the UI) stops its Spark work on the server instead of leaving it to finish there."""

    remote: str | None = Field(
        default=None,
        description="sc:// URL of a Spark Connect server (a secret: it may hold a token). "
        "Unset: the local engine of the data directory, started on first use.",
    )

    _session: SparkSession | None = PrivateAttr(default=None)
    _attachment: ExitStack = PrivateAttr(default_factory=ExitStack)
    _log: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._log = context.log

    @property
    def spark_session(self) -> SparkSession:
        if self._session is None:
            if self.remote:
                url = self.remote
                _check_reachable(url)
                if self._log:
                    self._log.info("Spark: the Spark Connect server at %s:%d" % _host_and_port(url))
            else:
                endpoint = self._attachment.enter_context(engine.attached())
                url = endpoint.url
                # Spark's own log stays out of the run's output; the run says where it is.
                if self._log:
                    self._log.info(
                        f"Spark: the local engine on 127.0.0.1:{endpoint.port},"
                        f" its log in {engine.engine_dir() / 'server.log'}"
                    )
            self._session = connect(url)
        return self._session

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        try:
            if self._session is not None:
                self._session.interruptAll()
                self._session.stop()
                self._session = None
        finally:
            self._attachment.close()


@contextmanager
def command_session() -> Iterator[SparkSession]:
    """A session for an operator command (explain, undo, rebuild), found as a run finds its own:
    the Spark Connect server ORDER_TRACKING_SPARK_REMOTE names, else the local warm engine
    (started if none runs; it stops itself when idle)."""
    spark = connect(os.environ.get(settings.SPARK_REMOTE) or engine.start()[0].url)
    try:
        yield spark
    finally:
        spark.stop()


def connect(url: str) -> SparkSession:
    """A new Spark Connect session on the server at `url`; every session of ours is made here."""
    _keep_the_shared_release_pool()
    return SparkSession.builder.remote(url).create()


def _keep_the_shared_release_pool() -> None:
    """PySpark 4.0's Connect client keeps one thread pool for every session of a process, and
    shuts it down whenever any session closes or is garbage-collected. A session collected while
    another one is between two steps of a query breaks that query ("cannot schedule new futures
    after shutdown"; seen in a test process that ran several runs' sessions). Upstream rewrote it
    after 4.0 (SPARK-55406); until the pinned PySpark has that, the pool is never shut down: its
    idle threads cost nothing, and the server drops results nobody releases."""
    from pyspark.sql.connect.client.reattach import ExecutePlanResponseReattachableIterator

    ExecutePlanResponseReattachableIterator.shutdown = classmethod(lambda cls: None)


def _host_and_port(url: str) -> tuple[str, int]:
    """Where an sc:// URL points, without its parameters (the token among them)."""
    parsed = urlparse(url.replace("sc://", "http://", 1))
    return parsed.hostname or "localhost", parsed.port or 15002


def _check_reachable(url: str) -> None:
    """Fail at once, naming the server: a client whose server is not there retries for minutes."""
    host, port = _host_and_port(url)
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as error:
        raise ConnectionError(
            f"no Spark Connect server at {host}:{port} (ORDER_TRACKING_SPARK_REMOTE): {error}"
        ) from None
