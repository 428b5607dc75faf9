"""The engine's driver program, run by spark-submit (engine.server_command): it starts the Spark
application, in which Spark Connect's plugin serves the clients, and keeps it running.

Not the stock `SparkConnectServer` main class, because that one sets, in code and over anything
spark-submit is given, that every client session runs its queries under a class loader of its
own; Spark keys its cache of compiled code by class loader, so every run compiled the same ~22
generated classes again and the JVM compiled them anew. Client sessions are new sessions of this
application and take the settings spark-submit was given (docs/configuration.md).

A script, not a module of the package: spark-submit runs it as the driver's Python program.
"""

import ctypes
import os
import signal
import sys
import time
from pathlib import Path

# Run as a script, this folder came first on the module path, where its modules (`delta`,
# `schema`, ...) would shadow installed packages of the same names.
sys.path = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

from pyspark.sql import SparkSession  # noqa: E402

POLL_SECONDS = 5


def main(ready_file: Path) -> int:
    # The JVM that started this program is the server: when it goes, this goes too. SIGTERM
    # keeps its default action: this program ends with a failure status, and spark-submit then
    # exits the JVM, whose shutdown hook stops Spark.
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    spark = SparkSession.builder.getOrCreate()
    # Connect's plugin listens from the moment the Spark context starts, but a client's session
    # can only be made once this default session exists: the supervisor publishes the endpoint
    # once this file names its JVM (so a file left by an engine before it never counts).
    scratch = ready_file.with_suffix(".tmp")
    scratch.write_text(str(os.getppid()))
    scratch.replace(ready_file)
    # Should Spark stop by itself (an internal error), the JVM must go too, or the supervisor
    # would keep a published engine that serves nobody: leaving with a failure status ends it.
    while not spark.sparkContext._jsc.sc().isStopped():
        time.sleep(POLL_SECONDS)
    return 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
