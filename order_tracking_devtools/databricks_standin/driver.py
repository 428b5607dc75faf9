"""The stand-in's cluster side: runs a `spark_python_task` the way a Databricks Runtime does.

Started by the stand-in as a plain script, never imported from the project: like a real cluster
it has Spark, Delta and the run's libraries, but our package only arrives in the code zip the
launcher uploads. The task file runs as `__main__` with the globals a Databricks Python task
gets: `spark`, `sc` and `dbutils` (secrets from the configured scopes).

  python driver.py task spec.json     one task; on a new job cluster it starts its own Spark
                                      driver, on an all-purpose cluster it attaches to the
                                      cluster's (spec "gateway")
  python driver.py cluster spec.json  an all-purpose cluster: one long-lived Spark driver JVM
                                      that task processes attach to, as Databricks' Python REPLs
                                      attach to the cluster's driver; lives until stdin closes
"""

import json
import os
import runpy
import sys
from pathlib import Path


class SecretNotFound(Exception):
    pass


class Secrets:
    """`dbutils.secrets`: values from the stand-in's scopes; each read is logged by name only."""

    def __init__(self, scopes: dict[str, dict[str, str]], access_log: Path):
        self._scopes = scopes
        self._access_log = access_log

    def get(self, scope: str, key: str) -> str:
        with self._access_log.open("a") as log:
            log.write(json.dumps({"scope": scope, "key": key}) + "\n")
        try:
            return self._scopes[scope][key]
        except KeyError:
            # The runtime's wording, so a missing secret reads the same as on a cluster.
            raise SecretNotFound(
                f"Secret does not exist with scope: {scope} and key: {key}"
            ) from None

    def listScopes(self) -> list[str]:  # noqa: N802 - dbutils' own name
        return sorted(self._scopes)


class DBUtils:
    def __init__(self, secrets: Secrets):
        self.secrets = secrets


def without_editable_installs() -> None:
    """The host's virtualenv has the project installed in editable mode; a cluster does not.
    Drop those import hooks so the task imports our package from the uploaded zip, as on
    Databricks."""
    sys.meta_path[:] = [
        finder
        for finder in sys.meta_path
        if not getattr(finder, "__module__", "").startswith("__editable__")
    ]
    for name in [m for m in sys.modules if m.startswith("__editable__")]:
        del sys.modules[name]


def start_session(spark_conf: dict[str, str]):
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in spark_conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def attach_session(port: int, secret: str):
    """A Python process joining a running driver JVM through its Py4J gateway."""
    os.environ["PYSPARK_GATEWAY_PORT"], os.environ["PYSPARK_GATEWAY_SECRET"] = str(port), secret
    from pyspark import SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    gateway = launch_gateway()  # connects, given the two variables above
    jvm = gateway.jvm
    jsc = jvm.org.apache.spark.api.java.JavaSparkContext.fromSparkContext(
        jvm.org.apache.spark.SparkContext.getOrCreate()
    )
    SparkContext(gateway=gateway, jsc=jsc)
    return SparkSession.builder.getOrCreate()  # the JVM's session, with its Delta extensions


def run_cluster(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    spark = start_session(spec["spark_conf"])
    parameters = spark.sparkContext._gateway.gateway_parameters  # noqa: SLF001
    ready = Path(spec["gateway_file"])
    ready.with_suffix(".tmp").write_text(
        json.dumps({"port": parameters.port, "secret": parameters.auth_token})
    )
    ready.with_suffix(".tmp").replace(ready)
    sys.stdin.read()  # the stand-in holds the other end; its exit ends the cluster
    spark.stop()


def run_task(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    without_editable_installs()
    gateway = spec.get("gateway")
    if gateway:
        spark = attach_session(gateway["port"], gateway["secret"])
    else:
        spark = start_session(spec["spark_conf"])

    scopes = json.loads(Path(spec["secrets_file"]).read_text())
    dbutils = DBUtils(Secrets(scopes, Path(spec["secret_access_log"])))

    sys.argv = [spec["python_file"], *spec["parameters"]]
    try:
        runpy.run_path(
            spec["python_file"],
            init_globals={"spark": spark, "sc": spark.sparkContext, "dbutils": dbutils},
            run_name="__main__",
        )
    finally:
        if not gateway:  # an all-purpose cluster's session outlives its tasks
            spark.stop()


if __name__ == "__main__":
    {"task": run_task, "cluster": run_cluster}[sys.argv[1]](sys.argv[2])
