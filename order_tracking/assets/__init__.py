from order_tracking.assets.compaction import order_tracking_compaction
from order_tracking.assets.insights import order_insights
from order_tracking.assets.pipeline import order_tracking_pipeline

__all__ = ["order_tracking_pipeline", "order_insights", "order_tracking_compaction"]
