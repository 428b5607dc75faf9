from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
)
from pyspark.sql import SparkSession

from order_tracking.assets.raw import RAW_ORDER_FILES
from order_tracking.catalog import QUARANTINED_ORDERS, STAGED_ORDERS
from order_tracking.checks import check_no_quarantined_rows
from order_tracking.daily import StagingReport, stage_days
from order_tracking.resources.lakehouse import Lakehouse

STAGED = AssetKey(STAGED_ORDERS.name)

staged_orders_spec = AssetSpec(
    STAGED,
    deps=[RAW_ORDER_FILES],
    description="Every raw file of the day parsed and typed; bad lines quarantined; one row per tracking_num.",
    kinds={"spark", "delta"},
)


def table_schema(struct) -> TableSchema:
    return TableSchema(
        columns=[TableColumn(f.name, f.dataType.simpleString()) for f in struct.fields]
    )


def materialize_staged_orders(
    context: AssetExecutionContext, spark: SparkSession, lakehouse: Lakehouse
) -> tuple[MaterializeResult, dict[str, StagingReport]]:
    """Stage each day of the run; also returns the days' reports, which the MERGE of the same
    step uses instead of reading the staged days back."""
    # One day, or a backfill's range: each day replaced alone, several at once.
    reports = stage_days(spark, lakehouse, context.partition_keys, context.run.run_id)
    for day, report in reports.items():
        context.log.info(
            f"{day} staged_orders: {report.rows_staged} row(s) staged,"
            f" {report.rows_quarantined} quarantined"
        )
        context.add_asset_metadata(report.metadata(), asset_key=STAGED, partition_key=day)
    result = MaterializeResult(
        asset_key=STAGED,
        metadata={
            "dagster/column_schema": table_schema(STAGED_ORDERS.schema),
            "table": MetadataValue.path(lakehouse.table_uri(STAGED_ORDERS)),
            "quarantine_table": MetadataValue.path(lakehouse.table_uri(QUARANTINED_ORDERS)),
        },
        check_results=[check_no_quarantined_rows(reports)],
    )
    return result, reports
