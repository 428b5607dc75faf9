"""Local Spark + Delta Lake configuration for the `pyspark` resource."""

from order_tracking import settings

DELTA_PACKAGE = "io.delta:delta-spark_2.13:4.0.1"


def local_spark_config() -> dict[str, str]:
    """A laptop/CI session: Delta's jars from Maven Central via Spark's own resolver, UTC, and
    partition counts sized for 2 cores instead of a cluster."""
    warehouse = settings.data_dir() / "spark-warehouse"
    return {
        "spark.master": "local[*]",
        # Local mode talks to itself only: bind to loopback, not the machine's network address.
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.app.name": "order_tracking",
        "spark.jars.packages": DELTA_PACKAGE,
        "spark.jars.ivy": str(settings.ivy_dir()),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "4",
        "spark.default.parallelism": "4",
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.sql.warehouse.dir": str(warehouse),
        "spark.driver.memory": "4g",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={warehouse}",
    }



if __name__ == "__main__":
    # `make jars`: start one session so Spark resolves Delta's jars into the Ivy cache now.
    from dagster_pyspark.resources import spark_session_from_config

    session = spark_session_from_config(local_spark_config())
    print(f"Spark {session.version} with {DELTA_PACKAGE}, jars cached in {settings.ivy_dir()}")
    session.stop()
