"""Where the test suite's CPU goes: `make bench-suite` (ARGS="-m quick" for the inner loop's tests).

Runs pytest as `make test` does, while this process reads /proc every second: each process's CPU by
kind (the warm engine's JVM, other JVMs such as the Databricks stand-in's clusters, Python
processes: pytest, `dagster` CLI runs, daemons, code servers, run workers), and the machine's busy
and idle time. A small pytest plugin (this module, loaded with `-p bench.suite_cpu`) writes when each test
started and ended; each second's CPU is shared among the tests running in it. A test's figure
therefore includes the engine work it caused and, when two workers overlap, half of the other's:
compare files and tests within one run, not across machines.

The engine's threads are read every 10 s: the last reading says how its CPU splits between the JIT
compilers, the garbage collector, task threads and Spark's scheduler. Threads that ended (one per
request) are not in it; the difference to the JVM's total is theirs.

Prints figures only; nothing here fails on a threshold (a noisy machine would make it flaky)."""

import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

CLOCK_DIR = "SUITE_CPU_CLOCK_DIR"
TICK = os.sysconf("SC_CLK_TCK")


# The plugin half, loaded by pytest in the controller and in each xdist worker.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    started = time.time()
    yield
    folder = os.environ.get(CLOCK_DIR)
    if folder:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(Path(folder) / f"{worker}.jsonl", "a") as clock:
            clock.write(json.dumps({"test": item.nodeid, "start": started, "end": time.time()}) + "\n")


def kind(command: str) -> str:
    if "SparkSubmit" in command and "engine_driver" in command:
        return "engine"
    if command.split(" ", 1)[0].endswith("java"):
        return "other JVMs"
    if "postgres" in command:
        return "postgres"
    if "chrom" in command:
        return "chromium"
    if "python" in command or "dagster" in command:
        return "python"
    return "other"


# The first role whose marker the command line holds. pytest's own processes are matched by how
# they were started, not by "pytest": the tests' folders (/tmp/pytest-of-…) are in the command lines
# of the processes they start (a stand-in cluster's host, an engine's supervisor).
PYTHON_ROLES = (
    ("run worker (dagster api execute_run)", "api execute_run"),
    # A run a daemon or `dagster dev` launches: a process the code server spawns (multiprocessing).
    ("run worker (spawned by a code server)", "spawn_main"),
    ("code server (dagster api grpc)", "api grpc"),
    ("code server (dagster api grpc)", "code-server"),
    ("daemon", "dagster-daemon"),
    ("webserver", "dagster-webserver"),
    ("webserver", "dagster_webserver"),
    ("daemon", "dagster._daemon"),
    ("dagster dev", "dagster dev"),
    ("CLI run (dagster asset materialize)", "asset materialize"),
    ("other dagster commands", "bin/dagster"),
    ("fake-gcs-server wrapper", "fake_gcs"),
    ("Databricks stand-in", "databricks_standin"),
    ("engine supervisor", "order_tracking.engine"),
    ("Spark's Python workers", "pyspark.daemon"),
    ("pytest (controller and xdist workers)", "-m pytest"),
    ("pytest (controller and xdist workers)", "sys.stdin.readline"),
)


def python_role(command: str) -> str:
    return next((role for role, marker in PYTHON_ROLES if marker in command), "other Python")


def total_cpu(cpu: collections.Counter) -> float:
    return sum(cpu[k] for k in KINDS)


def machine_busy() -> tuple[float, float]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / TICK, idle / TICK


class Sampler(threading.Thread):
    """Every second, the CPU each kind of process used since the last reading."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.threads: dict[str, float] = {}  # the busiest engine's threads, last reading
        self.engine_total = 0.0
        self.stop = threading.Event()
        self.last: dict[tuple[str, str], float] = {}
        self.before = set()  # processes already running: their past CPU is not the suite's
        self.idle_at = machine_busy()[1]
        self.unknown = collections.Counter()  # the commands of "other Python", to name new roles

    def read(self) -> dict[str, float]:
        used = collections.Counter()
        engines = {}
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            key = (proc.name, fields[19])
            cpu = (int(fields[11]) + int(fields[12])) / TICK
            if key not in self.last and not self.samples:
                self.before.add(key)
            if key not in self.before:
                what, spent = kind(command), cpu - self.last.get(key, 0.0)
                used[what] += spent
                if what == "python":
                    role = python_role(command)
                    used["python: " + role] += spent
                    if role == "other Python":
                        self.unknown[command[:160]] += spent
                if what == "engine":
                    engines[proc] = cpu
            self.last[key] = cpu
        # The machine's idle time since the last reading: CPU the suite could have used and did not.
        idle = machine_busy()[1]
        used["idle"], self.idle_at = idle - self.idle_at, idle
        if engines and len(self.samples) % 10 == 0:
            busiest = max(engines, key=engines.get)
            self.threads, self.engine_total = engine_threads(busiest), engines[busiest]
        return used

    def run(self):
        while not self.stop.is_set():
            self.samples.append((time.time(), self.read()))
            self.stop.wait(1.0)


def engine_threads(proc: Path) -> dict[str, float]:
    """CPU seconds per thread name (numbers dropped: "C2 CompilerThread0" and "...1" add up)."""
    threads = collections.Counter()
    for task in (proc / "task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = re.sub(r"[0-9#-]+$", "", stat[stat.index("(") + 1 : stat.rindex(")")]).strip()
        fields = stat.rsplit(")", 1)[1].split()
        threads[name] += (int(fields[11]) + int(fields[12])) / TICK
    return dict(threads)


def attribute(samples, tests) -> tuple[dict, dict]:
    """Each second's CPU shared among the tests running in it: {test: {kind: seconds}}."""
    per_test = collections.defaultdict(collections.Counter)
    outside = collections.Counter()
    for at, used in samples:
        running = [t["test"] for t in tests if t["start"] <= at < t["end"]]
        for name, seconds in used.items():
            if running:
                for test in running:
                    per_test[test][name] += seconds / len(running)
            else:
                outside[name] += seconds
    return per_test, outside


KINDS = ("engine", "other JVMs", "python", "postgres", "chromium", "other")


def row(label: str, cpu: collections.Counter, wall: float, count: int | str = "") -> str:
    return (
        f"{label:<58.58} {total_cpu(cpu):7.0f}" + "".join(f"{cpu[k]:11.0f}" for k in KINDS)
        + f"{cpu['idle']:7.0f}{wall:8.0f} {count:>4}"
    )


def report(sampler: Sampler, tests: list[dict], wall: float, busy: float, idle: float) -> None:
    per_test, outside = attribute(sampler.samples, tests)
    total = collections.Counter()
    for _, used in sampler.samples:
        total.update(used)
    print(f"\nwall {wall:.0f} s; machine busy {busy:.0f} CPU-s, idle {idle:.0f} (2 cores: {2 * wall:.0f})")
    # idle: the machine's idle CPU-s while the test ran (shared like the rest): waiting, not working.
    header = f"{'':<58} {'CPU-s':>7}" + "".join(f"{k:>11}" for k in KINDS) + f"{'idle':>7}{'wall':>8} {'n':>4}"
    print(header)
    print(row("the processes of the suite", total, wall))
    print(row("(between tests: start, collection, teardown)", outside, 0))

    print("\nthe Python processes by role")
    for name, seconds in sorted(((k, v) for k, v in total.items() if k.startswith("python: ")), key=lambda kv: -kv[1]):
        print(f"  {seconds:7.0f}  {name.removeprefix('python: ')}")
    for command, seconds in sampler.unknown.most_common(5):
        print(f"  {seconds:7.0f}    other: {command}")

    print("\nby file")
    files = collections.defaultdict(lambda: [collections.Counter(), 0.0, 0])
    for t in tests:
        entry = files[t["test"].split("::")[0]]
        entry[0].update(per_test[t["test"]])
        entry[1] += t["end"] - t["start"]
        entry[2] += 1
    for name, (cpu, seconds, count) in sorted(files.items(), key=lambda kv: -total_cpu(kv[1][0])):
        print(row(name.rsplit("/", 1)[-1], cpu, seconds, count))

    print("\nthe 25 costliest tests")
    for t in sorted(tests, key=lambda t: -total_cpu(per_test[t["test"]]))[:25]:
        print(row(t["test"].split("::", 1)[-1], per_test[t["test"]], t["end"] - t["start"]))

    if sampler.threads:
        live = sum(sampler.threads.values())
        print(f"\nthe busiest engine JVM at its last reading: {sampler.engine_total:.0f} CPU-s, of which")
        for name, seconds in sorted(sampler.threads.items(), key=lambda kv: -kv[1])[:12]:
            print(f"  {seconds:7.1f}  {100 * seconds / sampler.engine_total:5.1f} %  {name}")
        print(f"  {sampler.engine_total - live:7.1f}  {100 * (sampler.engine_total - live) / sampler.engine_total:5.1f} %  threads that ended (one per request)")


def main(args: list[str]) -> int:
    clock = Path(tempfile.mkdtemp(prefix="suite_cpu_"))
    env = os.environ | {CLOCK_DIR: str(clock)}
    # From the project's root, as `make test` runs: the plugin is imported as bench.suite_cpu.
    command = [sys.executable, "-m", "pytest", "-p", "bench.suite_cpu", "-q", "-n", "2", "--dist", "loadfile", *args]
    sampler = Sampler()
    busy0, idle0 = machine_busy()
    started = time.time()
    sampler.start()
    status = subprocess.call(command, env=env)
    sampler.stop.set()
    sampler.join()
    busy1, idle1 = machine_busy()
    tests = [json.loads(line) for path in clock.glob("*.jsonl") for line in path.read_text().splitlines()]
    report(sampler, tests, time.time() - started, busy1 - busy0, idle1 - idle0)
    # Kept for timelines (which files each worker ran, and when); this script reads it only once.
    print(f"\neach test's start and end, per worker: {clock}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
