"""A local stand-in for the Databricks REST API (DBFS + Jobs runs) that executes submitted
Python tasks with local Spark + Delta; see server.py for what it emulates."""

from order_tracking_devtools.databricks_standin.server import ApiError, DatabricksStandIn, Run

__all__ = ["ApiError", "DatabricksStandIn", "Run"]
