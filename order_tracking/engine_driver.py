"""The engine's driver program, run by spark-submit (engine.server_command): it makes the Spark
session that Spark Connect's plugin clones for each client, then waits to be stopped.

Not the stock `SparkConnectServer` main class, because that one forces every client session to
run its queries under a class loader of its own, and Spark keys its cache of compiled code by
class loader: every run recompiled the same ~22 generated classes and the JVM compiled them
again. Here the settings come from spark-submit's --conf alone (docs/configuration.md).

A script, not a module of the package: spark-submit runs it as the driver's Python program.
"""

import ctypes
import signal
import sys
import threading
from pathlib import Path

from pyspark.sql import SparkSession


def main() -> int:
    # The JVM that started this program is the server: when it goes, this goes too.
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
    # The plugin listens as soon as the Spark context starts, but a client's session is cloned
    # from this one: the supervisor publishes the endpoint only once the file named in the
    # command line exists.
    SparkSession.builder.getOrCreate()
    Path(sys.argv[1]).touch()
    stopping.wait()
    # No spark.stop(): the JVM may be going already (a stop signals the whole process group);
    # when this program ends, spark-submit exits and its shutdown hook stops Spark.
    return 0


if __name__ == "__main__":
    sys.exit(main())
