from order_tracking.assets.maintenance import order_tracking_layout
from order_tracking.assets.pipeline import order_tracking_pipeline

__all__ = ["order_tracking_pipeline", "order_tracking_layout"]
