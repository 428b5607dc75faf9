"""The warm engine with different JVM options, side by side: `make bench-engine` (prints figures;
not part of `make test`).

Each variant is an engine of its own (a data directory each), started with the variant's JVM
options as ORDER_TRACKING_ENGINE_JAVA_OPTIONS ('' for the JVM's defaults, G1). A round is the five sample days,
a run each for the pipeline and for the insights, as Spark Connect clients in this process, into a
fresh lakehouse. The variants take rounds in turn, the order swapped every round, so a machine that
drifts weighs on both; the first round of each warms its JIT and is left out of the means.

    make bench-engine       # the parallel collector alone against the engine's default options
    PYTHONPATH=. .venv/bin/python bench/engine_rounds.py --rounds 6 -- "" "-XX:+UseParallelGC"

With --day-mib N a round is instead one generated day of about N MiB (bench/large_file.py's
file: 1 in 7 lines a repeated key, 1 in 10,000 malformed) through the pipeline: what a setting does
to a day of many rows, where the sample days weigh its fixed cost per query.
"""

import argparse
import contextlib
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dagster import materialize

from order_tracking import engine
from order_tracking.assets import order_tracking_pipeline
from order_tracking.assets.insights import INSIGHT_ASSETS, order_insights
from order_tracking.assets.pipeline import DAILY_ASSETS
from order_tracking.engine import DEFAULT_ENGINE_JAVA_OPTIONS, ENGINE_JAVA_OPTIONS
from order_tracking.environment import Environment
from order_tracking.resources import SPARK_REMOTE, resources_for
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.landing import LandingZone
from order_tracking.sample_data import sample_files

from bench.large_file import write_file

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Variant:
    options: str
    url: str
    jvm: int
    rounds: list[tuple[float, float]] = field(default_factory=list)  # (wall s, engine CPU-s)

    @property
    def label(self) -> str:
        return self.options or "(JVM defaults: G1)"

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.jvm}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def peak_rss_mib(self) -> int:
        for line in Path(f"/proc/{self.jvm}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
        return 0


def round_resources(work: Path) -> dict:
    """The local resources, pointed at the round's own landing folder and fresh lakehouse."""
    return {
        **resources_for(Environment.LOCAL),
        "landing": LandingZone(uri=str(work / "landing")),
        "lakehouse": Lakehouse(uri=str(work / "lakehouse")),
    }


def sample_round(variant: Variant, work: Path) -> None:
    """The five sample days into a fresh lakehouse on the variant's engine: its wall and CPU."""
    os.environ[SPARK_REMOTE] = variant.url
    (work / "landing").mkdir(parents=True)
    resources = round_resources(work)
    cpu, started = variant.cpu(), time.monotonic()
    for number, file in enumerate(sample_files(), start=1):
        day = f"2023-01-{number:02d}"
        (work / "landing" / file.name).write_bytes(file.read_bytes())
        for selection in (DAILY_ASSETS, INSIGHT_ASSETS):
            result = materialize(
                [order_tracking_pipeline, order_insights],
                selection=selection,
                partition_key=day,
                resources=resources,
                run_config=QUIET,
            )
            assert result.success, f"{day} failed on {variant.label}"
    variant.rounds.append((time.monotonic() - started, variant.cpu() - cpu))


def large_day_round(variant: Variant, work: Path, day_file: Path) -> None:
    """One generated day of many rows into a fresh lakehouse: the pipeline (raw copy, staging,
    MERGE) on the variant's engine."""
    os.environ[SPARK_REMOTE] = variant.url
    (work / "landing").mkdir(parents=True)
    (work / "landing" / day_file.name).write_bytes(day_file.read_bytes())
    resources = round_resources(work)
    cpu, started = variant.cpu(), time.monotonic()
    result = materialize(
        [order_tracking_pipeline], partition_key="2023-01-05", resources=resources, run_config=QUIET
    )
    assert result.success, f"the large day failed on {variant.label}"
    variant.rounds.append((time.monotonic() - started, variant.cpu() - cpu))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="rounds per variant, the first a warm-up")
    parser.add_argument("--day-mib", type=float, help="rounds of one generated day of this size instead of the sample days")
    parser.add_argument(
        "options",
        nargs="*",
        default=["-XX:+UseParallelGC", DEFAULT_ENGINE_JAVA_OPTIONS],
        help="each variant's JVM options ('' for the JVM's defaults), after --; by default the"
        " parallel collector alone against the engine's default options",
    )
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="engine_rounds_"))
    day_file = None
    if args.day_mib:
        day_file = base / "order_tracking_2023_01_05.csv"
        print(f"the generated day: {write_file(day_file, int(args.day_mib * 1024**2)):,} lines", flush=True)
    previous = os.environ.get(ENGINE_JAVA_OPTIONS)
    with contextlib.ExitStack() as stack:
        variants = []
        for index, options in enumerate(args.options):
            directory = base / f"engine_{index}"
            os.environ[ENGINE_JAVA_OPTIONS] = options
            endpoint = stack.enter_context(engine.running(directory))  # stopped on the way out
            # The engine's driver program names its JVM there before the endpoint is published.
            jvm = int((directory / engine.READY_FILE).read_text())
            variants.append(Variant(options, endpoint.url, jvm))
        if previous is None:
            os.environ.pop(ENGINE_JAVA_OPTIONS)
        else:
            os.environ[ENGINE_JAVA_OPTIONS] = previous

        for number in range(args.rounds):
            for variant in variants if number % 2 == 0 else variants[::-1]:
                work = base / f"round_{number}_{variants.index(variant)}"
                if day_file:
                    large_day_round(variant, work, day_file)
                else:
                    sample_round(variant, work)
                wall, cpu = variant.rounds[-1]
                print(f"round {number} {variant.label:<32} wall {wall:6.1f} s  engine {cpu:6.1f} CPU-s", flush=True)

        print(f"\n{'engine JVM options':<34}{'warm rounds: engine CPU-s':<44}{'mean':>7}{'wall':>8}{'peak RSS':>10}")
        for variant in variants:
            warm = variant.rounds[1:] or variant.rounds
            cpus = " / ".join(f"{cpu:.1f}" for _, cpu in warm)
            mean_cpu = sum(cpu for _, cpu in warm) / len(warm)
            mean_wall = sum(wall for wall, _ in warm) / len(warm)
            print(f"{variant.label:<34}{cpus:<44}{mean_cpu:7.1f}{mean_wall:8.1f}{variant.peak_rss_mib():>6} MiB")
        if len(variants) == 2:
            pairs = [b[1] / a[1] for a, b in zip(variants[0].rounds[1:], variants[1].rounds[1:])]
            print(f"\nengine CPU, {variants[1].label} / {variants[0].label}, round by round: "
                  + ", ".join(f"{ratio:.2f}" for ratio in pairs))


if __name__ == "__main__":
    main()
