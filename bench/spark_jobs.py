"""Benchmark (prints figures; not part of `make test`): how many Spark jobs each asset costs for a
sample day. Every Spark job is a round of task scheduling with its fixed cost; for a 25-row day
that cost is nearly all of the time.

The five sample days are materialized one after the other, each asset alone (a subset of the
pipeline step) into one lakehouse and as the run's one step into another, in one classic local
session whose status tracker counts the jobs (a Spark Connect
client cannot see them; the plans, and so the jobs, are the same). `--list` prints, for the last
day, each job's line in our code.

    make bench-jobs       # or: PYTHONPATH=. .venv/bin/python bench/spark_jobs.py [--list]
"""

import argparse
import json
import tempfile
from pathlib import Path
from types import SimpleNamespace

from dagster import ResourceDefinition, materialize
from pyspark.sql import SparkSession

from order_tracking.assets import order_tracking_pipeline
from order_tracking.assets.insights import INSIGHT_ASSETS, order_insights
from order_tracking.assets.pipeline import DAILY_ASSETS
from order_tracking.engine import local_spark_config
from order_tracking.environment import Environment
from order_tracking.resources import resources_for
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.landing import LandingZone
from order_tracking.sample_data import sample_files

ASSETS = DAILY_ASSETS
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def classic_session(work: Path, event_log: Path | None) -> SparkSession:
    builder = SparkSession.builder
    settings = local_spark_config() | {"spark.sql.warehouse.dir": str(work / "warehouse")}
    if event_log:
        event_log.mkdir()
        settings |= {
            "spark.eventLog.enabled": "true",
            "spark.eventLog.dir": str(event_log),
            "spark.eventLog.compress": "false",
            "spark.eventLog.rolling.enabled": "false",
        }
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def job_sites(event_log: Path) -> dict[str, list[str]]:
    """Per job group (asset), each job's call site and, for Delta's own jobs, what it was for."""
    sites: dict[str, list[str]] = {}
    for log in (path for path in event_log.rglob("*") if path.is_file()):
        for line in log.open():
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            if event["Event"] != "SparkListenerJobStart":
                continue
            properties = event.get("Properties", {})
            group = properties.get("spark.jobGroup.id")
            if group:
                site = properties.get("callSite.short", "")
                what = properties.get("spark.job.description", "").removeprefix(f"Delta: {group}")
                sites.setdefault(group, []).append(f"{site.split('/order_tracking/')[-1]:<28} {what.strip(' :-')}")
    return sites


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print each job's call site (last day)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="spark_jobs_"))
    spark = classic_session(work, work / "events" if args.list else None)
    spark.sparkContext.setLogLevel("ERROR")
    tracker = spark.sparkContext.statusTracker()
    files = sample_files()

    def resources(lakehouse: Path) -> dict:
        (lakehouse / "landing").mkdir(parents=True)
        return {
            **resources_for(Environment.LOCAL),
            "pyspark": ResourceDefinition.hardcoded_resource(SimpleNamespace(spark_session=spark)),
            "landing": LandingZone(uri=str(lakehouse / "landing")),
            "lakehouse": Lakehouse(uri=str(lakehouse / "lakehouse")),
        }

    def jobs_of(group: str, selection: list[str] | None, day: str, resources: dict) -> int:
        spark.sparkContext.setJobGroup(group, group)
        result = materialize(
            [order_tracking_pipeline, order_insights],
            selection=selection or DAILY_ASSETS,
            partition_key=day,
            resources=resources,
            run_config=QUIET,
        )
        assert result.success, f"{group} failed"
        return len(tracker.getJobIdsForGroup(group))

    # Each asset alone (a run of a subset, say staged_orders after a parser fix), and the day as
    # a run does it: the three in one step, where the MERGE uses what the staging just measured.
    alone, whole = resources(work / "alone"), resources(work / "whole")
    print(
        f"{'day':<12}" + "".join(f"{asset:>17}" for asset in ASSETS)
        + f"{'total':>8}{'one step':>10}{'insights':>10}"
    )
    for number, file in enumerate(files, start=1):
        day = f"2023-01-{number:02d}"
        for each in (alone, whole):
            (Path(each["landing"].uri) / file.name).write_bytes(file.read_bytes())
        counts = [jobs_of(f"{day}/{asset}", [asset], day, alone) for asset in ASSETS]
        step = jobs_of(f"{day}/step", None, day, whole)
        # The run's second step: the history rebuild, its checks and the day's figures.
        insights = jobs_of(f"{day}/insights", INSIGHT_ASSETS, day, whole)
        print(
            f"{day:<12}" + "".join(f"{n:>17}" for n in counts)
            + f"{sum(counts):>8}{step:>10}{insights:>10}"
        )
    spark.stop()
    if args.list:
        last = f"2023-01-{len(files):02d}"
        for group, sites in job_sites(work / "events").items():
            if group.startswith(last) and not group.endswith("/step"):
                print(f"\n{group}: {len(sites)} jobs")
                for site in sites:
                    print(f"  {site}")


if __name__ == "__main__":
    main()
