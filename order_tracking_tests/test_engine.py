"""The local warm engine (order_tracking/engine.py): started by the first run that needs it, shared
by the next ones, one per data directory, private to its owner, stopped when idle or told to, and
a cancelled run's Spark work cancelled with it.

Real processes throughout: `dagster` CLI runs, the engine's supervisor and its Spark Connect JVM.
Each test that needs an engine of its own starts one (10-20 s); the others use the suite's.
"""

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from order_tracking import engine
from order_tracking.engine import read_endpoint, running
from order_tracking.resources import SPARK_REMOTE
from order_tracking.resources.spark import connect
from order_tracking.sample_data import sample_files
from order_tracking_devtools.databricks_standin.operator import materialize_command


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def engine_processes(directory: Path) -> list[int]:
    """Every process whose command line names `directory`: the supervisor, the JVM and its driver
    program."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                command = command_line(int(proc.name))
            except OSError:
                continue
            if str(directory) in command and alive(int(proc.name)):
                found.append(int(proc.name))
    return found


def command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def wait_until(predicate, timeout: float, step: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def own_engine_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The scripting contract's variables only: no ORDER_TRACKING_SPARK_REMOTE, so runs use the
    engine of their own data directory."""
    env = {k: v for k, v in os.environ.items() if k != SPARK_REMOTE}
    for name in ("home", "landing"):
        (tmp_path / name).mkdir(exist_ok=True)
    return env | {
        "DAGSTER_HOME": str(tmp_path / "home"),
        "ORDER_TRACKING_DATA_DIR": str(tmp_path / "data"),
        "ORDER_TRACKING_LANDING_URI": str(tmp_path / "landing"),
        "ORDER_TRACKING_LAKEHOUSE_URI": str(tmp_path / "lakehouse"),
    } | extra


def test_a_run_starts_the_engine_and_the_next_run_attaches(tmp_path):
    env = own_engine_env(tmp_path)
    directory = tmp_path / "data" / "engine"
    for day, sample in enumerate(sample_files()[:2], start=1):
        (tmp_path / "landing" / sample.name).write_bytes(sample.read_bytes())
    # Any Spark work starts or attaches to the engine; landing a day is the smallest (a whole day on
    # a cold engine of its own cost the suite some 40 CPU-seconds more, and the pipeline on an
    # engine is what every other CLI test runs).
    land_only = {"select": "raw_order_files"}
    try:
        first = subprocess.run(materialize_command("2023-01-01", **land_only), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert first.returncode == 0, first.stderr[-3000:]
        started = engine.read_endpoint(directory)
        assert started is not None, "no engine left running for the next run"

        attach = materialize_command("2023-01-02", **land_only)
        second = subprocess.run(attach, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert second.returncode == 0, second.stderr[-3000:]
        assert engine.read_endpoint(directory) == started  # same supervisor, port and token
        # Spark's own output goes to the engine's log, which each run names.
        assert f"its log in {directory / 'server.log'}" in second.stderr
        assert "Using Spark's default log4j" not in first.stderr + second.stderr
        assert len(engine_processes(directory)) == 3  # the supervisor, its JVM and the JVM's driver program
        # The engine's JVM options (its collector, the compiler's inlining) reached its JVM:
        # spark-submit applies a client-mode driver's Java options when it launches the JVM.
        [jvm] = [pid for pid in engine_processes(directory) if "SparkSubmit" in command_line(pid)]
        assert set(engine.DEFAULT_ENGINE_JAVA_OPTIONS.split()) <= set(command_line(jvm).split())
    finally:
        stopped = subprocess.run(
            [sys.executable, "-m", "order_tracking.engine", "stop"], env=env, capture_output=True, text=True, timeout=120
        )  # fmt: skip
    assert stopped.stdout.strip() == "stopped"
    assert wait_until(lambda: not engine_processes(directory), 10)
    assert engine.read_endpoint(directory) is None


def test_clients_arriving_together_share_one_engine_that_stops_when_idle(tmp_path, monkeypatch):
    monkeypatch.setenv("ORDER_TRACKING_ENGINE_IDLE_MINUTES", "0.1")  # 6 s
    directory = tmp_path / "engine"
    attachments = [engine.attached(directory) for _ in range(3)]
    try:
        with ThreadPoolExecutor(3) as pool:
            endpoints = list(pool.map(lambda attachment: attachment.__enter__(), attachments))
        assert len(set(endpoints)) == 1
        assert len(engine_processes(directory)) == 3

        # Held by attached clients, the engine stays up well past its idle time.
        time.sleep(10)
        assert engine.read_endpoint(directory) == endpoints[0]
    finally:
        for attachment in attachments:
            attachment.__exit__(None, None, None)
    assert wait_until(lambda: not engine_processes(directory), 60)
    assert not (directory / "endpoint.json").exists()


def test_a_block_stops_an_engine_it_started_and_leaves_one_it_found(engine, tmp_path):
    """engine.running(), as `make demo` and the benchmarks use it: nothing of theirs is left
    running after them, and a user's running engine is not stopped under them."""
    with running(engine.directory) as endpoint:
        assert endpoint == engine.endpoint
    assert read_endpoint(engine.directory) == engine.endpoint

    directory = tmp_path / "engine"
    with running(directory):
        assert len(engine_processes(directory)) == 3
    assert wait_until(lambda: not engine_processes(directory), 10)


def test_only_its_owner_and_token_holders_on_loopback_are_served(engine):
    assert stat.S_IMODE(engine.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((engine.directory / "endpoint.json").stat().st_mode) == 0o600
    # Listening on 127.0.0.1 only (/proc/net/tcp: local address in hex, state 0A = LISTEN).
    listening = [
        line.split()[1]
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:] + Path("/proc/net/tcp6").read_text().splitlines()[1:]
        if line.split()[3] == "0A" and line.split()[1].endswith(f":{engine.endpoint.port:04X}")
    ]
    assert listening == [f"0100007F:{engine.endpoint.port:04X}"] or listening == [
        f"0000000000000000FFFF00000100007F:{engine.endpoint.port:04X}"
    ]
    stranger = connect(f"sc://localhost:{engine.endpoint.port}/;token=guess")
    with pytest.raises(Exception, match="UNAUTHENTICATED|Invalid authentication token"):
        stranger.range(1).collect()


CANCELLABLE = textwrap.dedent(
    '''
    from dagster import Definitions, asset, in_process_executor
    from pyspark.sql import functions as F
    from order_tracking.resources.spark import SparkConnect

    @asset
    def slow_write(pyspark: SparkConnect) -> None:
        """Writes one row once a Spark task has slept NAP seconds."""
        def nap(_):
            import time
            time.sleep(NAP)
            return True
        spark = pyspark.spark_session
        row = spark.range(1).where(F.udf(nap, "boolean").asNondeterministic()(F.lit(1)))
        row.write.format("delta").save(TABLE)

    defs = Definitions(
        assets=[slow_write],
        resources={"pyspark": SparkConnect(remote=URL)},
        executor=in_process_executor,  # as order_tracking.definitions runs its steps
    )
    '''
)
NAP = 20


def start_slow_run(folder: Path, url: str) -> subprocess.Popen:
    folder.mkdir()
    definitions = folder / "cancellable.py"
    settings = f"TABLE = {str(folder / 'table')!r}\nURL = {url!r}\nNAP = {NAP}\n"
    definitions.write_text(settings + CANCELLABLE)
    (folder / "home").mkdir()
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-f", str(definitions), "--select", "slow_write"],
        env=os.environ | {"DAGSTER_HOME": str(folder / "home")},
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_a_cancelled_run_cancels_its_spark_work(engine, tmp_path):
    """Ctrl-C on the CLI (SIGINT) and the UI's terminate (SIGTERM): each run's write, under way
    on the engine, is cancelled; nothing is written after the run has ended."""
    runs = {signum: start_slow_run(tmp_path / signum.name, engine.url) for signum in (signal.SIGINT, signal.SIGTERM)}
    for signum, run in runs.items():
        for line in run.stdout:  # the step has started: its write is on its way to the engine
            if "STEP_START" in line:
                break
    time.sleep(5)
    started = time.monotonic()
    for signum, run in runs.items():
        run.send_signal(signum)
    for signum, run in runs.items():
        output = run.stdout.read()
        assert run.wait(60) != 0, f"{signum.name}: the run was not cancelled\n{output[-3000:]}"

    # Had the engine carried on, each table would have its first commit NAP seconds after its step
    # started. (A cancelled write may leave a data file; without a commit no reader sees it.)
    time.sleep(max(0.0, NAP + 10 - (time.monotonic() - started)))
    for signum in runs:
        commits = list((tmp_path / signum.name / "table" / "_delta_log").glob("*.json"))
        assert commits == [], f"{signum.name}: committed after the run ended"


def test_runs_share_the_engines_class_loader(new_session):
    """Spark caches the code it compiles by class loader. A run's session must run its queries
    under the engine's own loader (it adds no classes), or every run compiles the same classes
    again; Spark's stock server main class sets the opposite (docs/configuration.md)."""
    setting = "spark.sql.artifact.isolation.alwaysApplyClassloader"
    first, second = new_session(), new_session()
    assert first.conf.get(setting) == second.conf.get(setting) == "false"
    assert first.conf.get("spark.sql.artifact.isolation.enabled") == "true"


def test_the_engine_interprets_queries_unless_told_to_compile(spark, monkeypatch):
    """The suite's engine started with the default: its sessions evaluate interpreted. The
    setting is "on" or "off"; anything else is refused before an engine starts."""
    assert spark.conf.get("spark.sql.codegen.factoryMode") == "NO_CODEGEN"
    assert spark.conf.get("spark.sql.codegen.wholeStage") == "false"
    assert spark.range(5).selectExpr("sum(id * 2) AS s").first()["s"] == 20

    monkeypatch.setenv(engine.ENGINE_CODEGEN, "on")
    compiled = engine.server_spark_config(Path("/nowhere"))
    assert "spark.sql.codegen.factoryMode" not in compiled and "spark.sql.codegen.wholeStage" not in compiled
    monkeypatch.setenv(engine.ENGINE_CODEGEN, "yes")
    with pytest.raises(ValueError, match='ORDER_TRACKING_ENGINE_CODEGEN must be "on" or "off"'):
        engine.server_spark_config(Path("/nowhere"))
