"""Operator tools as Dagster jobs, so the UI runs what the command line runs (same functions).

explain_order_job: launch it with the tracking number in its run config; the explanation is
Markdown metadata on the run's output, shown in the run's page.
"""

from dagster import Config, MetadataValue, OpExecutionContext, Output, job, op

from order_tracking.explain import explain
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
