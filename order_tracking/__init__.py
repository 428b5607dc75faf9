"""order_tracking: an always-correct order-tracking Delta table from daily order-status files."""
