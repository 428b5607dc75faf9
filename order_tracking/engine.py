"""Local Spark with Delta: its configuration, and the warm engine, one long-lived Spark Connect
server per data directory that every run on this machine attaches to instead of starting a JVM.

The first run that needs Spark starts it (detached, in its own process group, one instance per
directory guaranteed by a lock); later runs attach in about a second. It listens on 127.0.0.1
only and accepts only clients that hold its token, kept in a file only its owner can read. It
stops itself after ORDER_TRACKING_ENGINE_IDLE_MINUTES (default 30) without an attached run;
`make stop` stops it at once. Its log is `<data dir>/engine/server.log`.

    python -m order_tracking.engine start | status | stop
    python -m order_tracking.engine jars     # resolve Delta's jars into the Ivy cache (make jars)

Files in `<data dir>/engine/` (a folder only the owner may enter):
- `engine.lock`  held by the supervisor while it lives: at most one engine per directory;
- `start.lock`   serializes clients that find no engine and start one;
- `clients.lock` shared-locked by every attached client; the supervisor counts the engine idle
                 only while it can take it exclusively (a killed client's lock goes with it);
- `session.ready` the JVM's pid, written by its driver program (engine_driver.py) once client
                 sessions can be made;
- `endpoint.json` port, token and supervisor pid, written once both the server accepts
                 connections and `session.ready` names the server's JVM.
"""

import argparse
import ctypes
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from order_tracking import settings

DELTA_PACKAGE = "io.delta:delta-spark_2.13:4.0.1"
# What Spark's resolver retrieves for DELTA_PACKAGE into <ivy dir>/jars.
DELTA_JARS = (
    "io.delta_delta-spark_2.13-4.0.1.jar",
    "io.delta_delta-storage-4.0.1.jar",
    "org.antlr_antlr4-runtime-4.13.1.jar",
)

# A first start may resolve Delta's jars from Maven Central before the JVM even begins.
STARTUP_TIMEOUT_SECONDS = 300
POLL_SECONDS = 2.0
LOCK_TAKEN = 3  # the supervisor's exit status when another one already serves the directory


@dataclass(frozen=True)
class Endpoint:
    port: int
    token: str
    pid: int  # the supervisor's, also its process group

    @property
    def url(self) -> str:
        # "localhost", not 127.0.0.1: PySpark sends a token without TLS only to that host name.
        return f"sc://localhost:{self.port}/;token={self.token}"


def local_spark_config() -> dict[str, str]:
    """A laptop/CI session: Delta's jars from Maven Central via Spark's own resolver, UTC, and
    partition counts sized for 2 cores instead of a cluster. The engine runs with these; a classic
    in-process session (benchmarks, the Databricks stand-in's cluster) uses them as they are."""
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
        # A table's file list (Delta's snapshot state) in one partition: every scan of a Delta
        # table filters it in a Spark job with a task per partition, each task deserializing the
        # job's plan. A local table's list is small; Delta's default of 50 partitions made the
        # sample days' insight steps cost a warm JVM 2.4-3.6x the CPU (docs/configuration.md).
        "spark.databricks.delta.snapshotPartitions": "1",
        # Listing a table's files in parallel launched thousands of tiny tasks (VACUUM on a small
        # table: 64-78 s instead of 5 s).
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": "4",
        "spark.sql.warehouse.dir": str(warehouse),
        "spark.driver.memory": "4g",
        "spark.ui.enabled": "false",
        # Every new query shape compiles generated Java code; the cache of compiled code held 100
        # entries, fewer than the shapes a day's runs use, so a warm engine kept compiling again:
        # the quick tests cost the engine 206-223 CPU-seconds with 100 entries, 169-191 with 5000.
        "spark.sql.codegen.cache.maxEntries": "5000",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={warehouse}",
    }


ENGINE_CODEGEN = "ORDER_TRACKING_ENGINE_CODEGEN"
ENGINE_JAVA_OPTIONS = "ORDER_TRACKING_ENGINE_JAVA_OPTIONS"
# The engine JVM's options unless ORDER_TRACKING_ENGINE_JAVA_OPTIONS gives others (empty: the JVM's
# defaults). Measured on 2 cores with bench/engine_rounds.py and bench/suite_cpu.py; figures in
# docs/configuration.md.
# - The parallel collector: a warm engine's work is many short queries that build and drop
#   Catalyst trees, and G1's write barriers and concurrent marking cost those queries themselves
#   (five sample days on a warm engine: 0.72-0.90 of G1's CPU per pair).
# - Less inlining by the optimizing compiler (C2): the engine's code is Spark's and Delta's
#   analysis, planning and commit paths, run a few times per query on a few rows, and C2 spent a
#   fifth to a quarter of the engine's CPU compiling them with the JVM's default inlining; with
#   these limits it spends half that (the quick tests: engine CPU 0.76-0.92 of the defaults',
#   C2 113-129 -> 56-62 CPU-s). A warm engine's day of 670,000 lines costs about 5 % more.
DEFAULT_ENGINE_JAVA_OPTIONS = "-XX:+UseParallelGC -XX:MaxInlineSize=20 -XX:FreqInlineSize=100 -XX:InlineSmallCode=1000"


def server_spark_config(directory: Path) -> dict[str, str]:
    """The engine's settings: the local ones, its heap from ORDER_TRACKING_ENGINE_MEMORY, its JVM's
    options from ORDER_TRACKING_ENGINE_JAVA_OPTIONS, code generation as
    ORDER_TRACKING_ENGINE_CODEGEN says, and Delta's jars from the Ivy cache."""
    return with_cached_delta_jars(
        local_spark_config()
        | {
            "spark.app.name": "order_tracking engine",
            # One driver heap serves every attached run: an out-of-memory error stops the engine
            # (the runs on it fail; the next run starts a new one).
            "spark.driver.memory": os.environ.get("ORDER_TRACKING_ENGINE_MEMORY", "4g"),
            "spark.sql.warehouse.dir": str(directory / "spark-warehouse"),
            "spark.driver.extraJavaOptions": (
                f"-Dderby.system.home={directory} {os.environ.get(ENGINE_JAVA_OPTIONS, DEFAULT_ENGINE_JAVA_OPTIONS)}"
            ).strip(),
            # Spark Connect as a plugin of our own driver program (engine_driver.py): the stock
            # server main class overrides the next setting in code.
            "spark.plugins": "org.apache.spark.sql.connect.SparkConnectPlugin",
            # A session that adds no jars or classes of its own plans its queries under the
            # server's class loader, so the sessions share Spark's cache of compiled code
            # (keyed by class loader). With a loader per session, as Spark's own server main
            # sets, each run compiled the same 22 classes again and the JVM compiled those
            # anew: the sample days cost the engine 4-19 % more CPU (docs/configuration.md).
            # Tasks still run under their session's loader (artifacts stay isolated): sharing
            # that one too saved no measurable CPU (docs/configuration.md).
            "spark.sql.artifact.isolation.enabled": "true",
            "spark.sql.artifact.isolation.alwaysApplyClassloader": "false",
        }
        | codegen_config(os.environ.get(ENGINE_CODEGEN, "off"))
    )


def codegen_config(setting: str) -> dict[str, str]:
    """Spark's code generation in the engine: "off" (the default) evaluates every query
    interpreted, "on" is Spark's own default.

    With code generation Spark writes Java source for each operator and projection, in every task,
    and compiles each shape it has not seen. For a laptop's or CI's small days that work, not the
    rows, was the largest part of the engine's CPU; a day of hundreds of thousands of rows runs
    faster compiled (the figures both ways are in docs/configuration.md).
    `spark.sql.codegen.factoryMode` is internal to Spark (its tests run every expression both
    ways); the engine reads it when it starts, so a change needs `make stop` first."""
    if setting == "on":
        return {}
    if setting == "off":
        return {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"}
    raise ValueError(f'{ENGINE_CODEGEN} must be "on" or "off", not {setting!r}')


def with_cached_delta_jars(config: dict[str, str]) -> dict[str, str]:
    """`config` taking Delta's jars from the Ivy cache when `make jars` put them there: with
    spark.jars.packages, Ivy resolves them again, contacting Maven Central, at every JVM start."""
    cached = [settings.ivy_dir() / "jars" / name for name in DELTA_JARS]
    if not all(jar.is_file() for jar in cached):
        return config
    config = {k: v for k, v in config.items() if k not in ("spark.jars.packages", "spark.jars.ivy")}
    return config | {"spark.jars": ",".join(str(jar) for jar in cached)}


class EngineError(RuntimeError):
    """The engine could not be started or reached; the message says where its log is."""


def engine_dir() -> Path:
    return settings.data_dir() / "engine"


def _private_dir(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)  # the token inside lets anyone who reads it run code as this user
    return directory


def _lock(path: Path, mode: int) -> int | None:
    """An open descriptor holding flock(mode) on `path`, or None when LOCK_NB and it is taken."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, mode)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_endpoint(directory: Path) -> Endpoint | None:
    """The running engine's endpoint, if one is up and accepting connections."""
    try:
        endpoint = Endpoint(**json.loads((directory / "endpoint.json").read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None
    if _alive(endpoint.pid) and _accepts(endpoint.port):
        return endpoint
    return None


def _reads(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def _log_tail(directory: Path, lines: int = 30) -> str:
    try:
        return "\n".join((directory / "server.log").read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def start(directory: Path | None = None) -> tuple[Endpoint, bool]:
    """The engine of `directory` (default: the data directory's), started if none runs.
    Returns (endpoint, whether this call started it)."""
    directory = _private_dir(directory or engine_dir())
    endpoint = read_endpoint(directory)
    if endpoint:
        return endpoint, False
    starting = _lock(directory / "start.lock", fcntl.LOCK_EX)
    try:
        endpoint = read_endpoint(directory)  # someone else may have started it meanwhile
        if endpoint:
            return endpoint, False
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        supervisor = _spawn_supervisor(directory)
        while time.monotonic() < deadline:
            endpoint = read_endpoint(directory)
            if endpoint:
                return endpoint, True
            if supervisor.poll() == LOCK_TAKEN:
                # An engine going away for idleness still held its lock: start again.
                supervisor = _spawn_supervisor(directory)
            elif supervisor.poll() is not None:
                break
            time.sleep(0.5)
        raise EngineError(
            f"the Spark engine did not start (log: {directory / 'server.log'}):\n{_log_tail(directory)}"
        )
    finally:
        _unlock(starting)


def _spawn_supervisor(directory: Path) -> subprocess.Popen:
    with open(directory / "supervisor.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "order_tracking.engine", "serve", "--dir", str(directory)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: outlives the run, never its signals
            close_fds=True,
        )


@contextmanager
def attached(directory: Path | None = None) -> Iterator[Endpoint]:
    """The engine's endpoint, kept from stopping for idleness while the block runs."""
    directory = _private_dir(directory or engine_dir())
    # Taken before looking for the engine: an engine that found itself idle holds this lock
    # exclusively until it is gone, so a client never attaches to one about to stop.
    client = _lock(directory / "clients.lock", fcntl.LOCK_SH)
    try:
        endpoint, _ = start(directory)
        yield endpoint
    finally:
        _unlock(client)


@contextmanager
def running(directory: Path | None = None) -> Iterator[Endpoint]:
    """The engine of `directory` for the block (a demo, a benchmark): started if none runs, and
    then stopped again at the end, so the block leaves nothing running; one that was already
    running is left as it was."""
    with starting(directory) as endpoint:
        yield endpoint()


@contextmanager
def starting(directory: Path | None = None) -> Iterator[Callable[[], Endpoint]]:
    """`running`, with the block going on while the engine starts (10-15 s of JVM start that a
    demo spends importing and preparing): calling what it yields waits for the endpoint."""
    with ThreadPoolExecutor(max_workers=1) as background:
        started = background.submit(start, directory)
        try:
            yield lambda: started.result()[0]
        finally:
            if started.exception() is None and started.result()[1]:
                stop(directory)


def stop_unless_attached(directory: Path | None = None) -> bool:
    """Stop the engine of `directory` if no client holds it attached (see `attached`): how the
    last of several processes sharing one engine (the test suite's workers) stops it. True if
    it was stopped (or was not running)."""
    directory = _private_dir(directory or engine_dir())
    alone = _lock(directory / "clients.lock", fcntl.LOCK_EX | fcntl.LOCK_NB)
    if alone is None:
        return False
    try:
        stop(directory)
        return True
    finally:
        _unlock(alone)


def stop(directory: Path | None = None, timeout: float = 60) -> bool:
    """Stop the engine of `directory`; True if one was running."""
    directory = directory or engine_dir()
    if not _running(directory):
        return False
    pid = _supervisor_pid(directory)
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _running(directory):
            return True
        time.sleep(0.2)
    os.killpg(pid, signal.SIGKILL)
    return True


def _running(directory: Path) -> bool:
    """Whether a supervisor holds the directory's engine lock (starting, serving or stopping)."""
    if not directory.exists():
        return False
    held = _lock(directory / "engine.lock", fcntl.LOCK_EX | fcntl.LOCK_NB)
    if held is None:
        return True
    _unlock(held)
    return False


def _supervisor_pid(directory: Path) -> int:
    # Written at start, before the server is up, so that a starting engine can be stopped too.
    return int((directory / "supervisor.pid").read_text())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    # The JVM must not outlive its supervisor (killed with SIGKILL, say): a server nobody
    # tracks would hold memory and a port until reboot.
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


READY_FILE = "session.ready"


def server_command(port: int, directory: Path) -> list[str]:
    import pyspark

    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    config = server_spark_config(directory) | {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
    }
    command = [str(submit)]
    for key, value in config.items():
        command += ["--conf", f"{key}={value}"]
    # The driver program, told where to say it is ready: its command line names the engine's
    # folder, as the JVM's does, so whoever looks for the engine's processes finds all three.
    return command + [str(Path(__file__).with_name("engine_driver.py")), str(directory / READY_FILE)]


def serve(directory: Path, idle_seconds: float) -> int:
    """The supervisor: run the server, publish its endpoint, stop it when idle or told to."""
    held = _lock(directory / "engine.lock", fcntl.LOCK_EX | fcntl.LOCK_NB)
    if held is None:
        return LOCK_TAKEN  # another supervisor serves this directory
    (directory / "supervisor.pid").write_text(str(os.getpid()))
    token = secrets.token_urlsafe(32)
    port = _free_port()
    env = os.environ | {
        "SPARK_CONNECT_AUTHENTICATE_TOKEN": token,
        # Python UDFs run in the server's workers: they must import what the runs import.
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }
    env.pop("SPARK_HOME", None)  # the pyspark package's own Spark, whatever the shell says
    # The driver program makes a classic session; PySpark would make a Connect client instead
    # if these said so, and a process that opened a Connect session sets the first of them (so
    # a run that starts the engine passes it on).
    for variable in ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE", "SPARK_LOCAL_REMOTE", "SPARK_API_MODE"):
        env.pop(variable, None)
    # Written by engine_driver.py, naming its JVM, once clients can be served.
    ready = directory / READY_FILE
    with open(directory / "server.log", "ab") as log:
        server = subprocess.Popen(
            server_command(port, directory),
            cwd=directory,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    endpoint_file = directory / "endpoint.json"
    published = False
    idle_since: float | None = None
    clients = None
    try:
        while not stopping and server.poll() is None:
            if not published and _reads(ready) == str(server.pid) and _accepts(port):
                scratch = endpoint_file.with_suffix(".tmp")
                fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as out:
                    json.dump(asdict(Endpoint(port, token, os.getpid())), out)
                scratch.replace(endpoint_file)
                published = True
                print(f"engine ready on 127.0.0.1:{port}", flush=True)
            if published:
                clients = _lock(directory / "clients.lock", fcntl.LOCK_EX | fcntl.LOCK_NB)
                if clients is None:
                    idle_since = None
                elif time.monotonic() - (idle_since := idle_since or time.monotonic()) >= idle_seconds:
                    # Clients stay locked out until this engine is gone (see `attached`).
                    print(f"idle for {idle_seconds:.0f} s: stopping", flush=True)
                    stopping = True
                    break
                else:
                    _unlock(clients)
                    clients = None
            time.sleep(POLL_SECONDS)
        if server.poll() is not None:
            print(f"server exited with {server.returncode}", flush=True)
    finally:
        _shutdown(server, endpoint_file)
        ready.unlink(missing_ok=True)
        (directory / "supervisor.pid").unlink(missing_ok=True)
        # The engine lock before the clients': a client let in must be able to start a new one.
        _unlock(held)
        if clients is not None:
            _unlock(clients)
    return 0 if stopping else 1


def _shutdown(server: subprocess.Popen, endpoint_file: Path) -> None:
    endpoint_file.unlink(missing_ok=True)
    if server.poll() is None:
        server.terminate()  # the JVM's shutdown hooks stop Spark cleanly
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def idle_seconds() -> float:
    return 60 * float(os.environ.get("ORDER_TRACKING_ENGINE_IDLE_MINUTES", "30"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m order_tracking.engine", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["start", "status", "stop", "serve", "jars"])
    parser.add_argument("--dir", type=Path, default=None, help="engine folder (default: <data dir>/engine)")
    args = parser.parse_args(argv)
    directory = args.dir or engine_dir()
    if args.command == "serve":
        return serve(directory, idle_seconds())
    if args.command == "jars":
        cached = settings.ivy_dir() / "jars"
        if all((cached / name).is_file() for name in DELTA_JARS):
            print(f"{DELTA_PACKAGE}: jars cached in {cached}")
            return 0
        # One classic session: Spark's resolver puts Delta's jars into the Ivy cache.
        from pyspark.sql import SparkSession

        session = SparkSession.builder.config(map=local_spark_config()).getOrCreate()
        print(f"Spark {session.version} with {DELTA_PACKAGE}, jars cached in {settings.ivy_dir()}")
        session.stop()
        return 0
    if args.command == "start":
        endpoint, started = start(directory)
        print(f"{'started' if started else 'running'}: 127.0.0.1:{endpoint.port} (log: {directory / 'server.log'})")
    elif args.command == "status":
        endpoint = read_endpoint(directory)
        print(f"running: 127.0.0.1:{endpoint.port}, pid {endpoint.pid}" if endpoint else "not running")
    else:
        print("stopped" if stop(directory) else "not running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
