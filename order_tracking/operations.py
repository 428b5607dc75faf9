"""Operator tools as Dagster jobs, so the UI runs what the command line runs (same functions).

explain_order_job: launch it with the tracking number in its run config; the explanation is
Markdown metadata on the run's output, shown in the run's page.
rebuild_job: the days to restage in its run config; order_tracking and the status history are
rewritten from all staged days, one commit each.
undo_run_job: the run id whose MERGEs to undo in its run config; what it undid is the metadata
of its output (and a row of order_tracking_undo_log). A refusal fails the run with its reason.
"""

from dagster import Config, Failure, MetadataValue, OpExecutionContext, Output, job, op
from pydantic import Field

from order_tracking.assets.pipeline import ORDER_TRACKING_WRITER_POOL
from order_tracking.explain import explain
from order_tracking.rebuild import days_between, rebuild
from order_tracking.undo import UndoRefused, undo_run
from order_tracking.resources.lakehouse import Lakehouse
from order_tracking.resources.spark import SparkResource, StepLauncherResource


class ExplainConfig(Config):
    tracking_num: str


@op(description="Every line received for a tracking number, what became of it, the MERGE that wrote its row, its status history.")
def explain_order(
    context: OpExecutionContext,
    config: ExplainConfig,
    pyspark: SparkResource,
    lakehouse: Lakehouse,
    step_launcher: StepLauncherResource,
) -> Output[str]:
    explanation = explain(pyspark.spark_session, lakehouse, config.tracking_num.strip())
    markdown = explanation.to_markdown()
    context.log.info(f"{config.tracking_num}: {len(explanation.lines)} line(s) received")
    return Output(
        markdown,
        metadata={
            "explanation": MetadataValue.md(markdown),
            "lines_received": len(explanation.lines),
            "in_order_tracking": explanation.current is not None,
        },
    )


@job(description="Explain one order (run config: ops.explain_order.config.tracking_num).")
def explain_order_job():
    explain_order()


class UndoConfig(Config):
    run_id: str = Field(description="The run whose MERGEs into order_tracking to undo.")
    also_later_merges: bool = Field(
        default=False, description="Undo the MERGEs of later runs too (refused otherwise, naming them)."
    )


# In the writers' pool: no MERGE may commit between reading the history and the RESTORE.
@op(
    pool=ORDER_TRACKING_WRITER_POOL,
    description="Restore order_tracking to the version before a run's MERGE; the raw files stay for a rerun.",
)
def undo_run_merges(
    context: OpExecutionContext,
    config: UndoConfig,
    pyspark: SparkResource,
    lakehouse: Lakehouse,
    step_launcher: StepLauncherResource,
) -> Output[str]:
    try:
        report = undo_run(
            pyspark.spark_session, lakehouse, config.run_id.strip(), f"run:{context.run_id}", config.also_later_merges
        )
    except UndoRefused as refused:
        raise Failure(description=f"Undo refused: {refused}") from None
    context.log.info(f"undid run {config.run_id} (days {', '.join(report.plan.days)})")
    return Output(config.run_id, metadata=report.metadata())


@job(description="Undo a bad day: restore order_tracking to before a run's MERGE (run config: ops.undo_run_merges.config.run_id).")
def undo_run_job():
    undo_run_merges()


class RebuildConfig(Config):
    first_day: str = Field(description="First day to stage again from the raw zone (YYYY-MM-DD).")
    last_day: str = Field(description="Last day to stage again (YYYY-MM-DD).")


# In the writers' pool: a MERGE committing during the overwrite would leave its rows beside the
# rebuilt ones.
@op(
    pool=ORDER_TRACKING_WRITER_POOL,
    description="Stage a range of days again from the raw zone; rewrite order_tracking and the status history from all staged days.",
)
def rebuild_from_raw_zone(
    context: OpExecutionContext,
    config: RebuildConfig,
    pyspark: SparkResource,
    lakehouse: Lakehouse,
    step_launcher: StepLauncherResource,
) -> Output[str]:
    try:
        days_between(config.first_day, config.last_day)
    except ValueError as error:
        raise Failure(description=str(error)) from None
    report = rebuild(pyspark.spark_session, lakehouse, config.first_day, config.last_day, context.run_id)
    context.log.info(f"restaged {len(report.days_restaged)} day(s); order_tracking {report.rows_before} -> {report.rows_after} rows")
    return Output(f"{config.first_day}...{config.last_day}", metadata=report.metadata())


@job(description="Rebuild from the raw zone (run config: ops.rebuild_from_raw_zone.config.first_day / last_day).")
def rebuild_job():
    rebuild_from_raw_zone()
