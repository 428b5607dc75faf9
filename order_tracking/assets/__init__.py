from order_tracking.assets.maintenance import order_tracking_layout
from order_tracking.assets.raw import raw_order_files
from order_tracking.assets.staged import staged_orders
from order_tracking.assets.target import order_tracking

__all__ = ["raw_order_files", "staged_orders", "order_tracking", "order_tracking_layout"]
