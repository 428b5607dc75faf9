"""`make screenshot` (after `make demo`): start `dagster dev` on the demo's instance, open the asset
graph and order_kpis_daily's plots in headless Chromium and save them (the README's and
docs/insights.md's pictures), then shut the Dagster UI down."""

import os
import sys
from pathlib import Path

from order_tracking_devtools.ui import DagsterUI, open_asset_graph, open_asset_plots
from order_tracking_devtools.dagster_processes import running_dagster_dev, shut_down
from order_tracking_devtools.gcs_emulator import free_port


def main(out: Path) -> int:
    home = Path(os.environ["DAGSTER_HOME"])
    port = free_port()
    with running_dagster_dev(home, {}, home / "screenshot_dagster_dev.log", port) as process:
        ui = DagsterUI(f"http://127.0.0.1:{port}")
        ui.wait_until_ready(timeout=180, is_alive=lambda: process.poll() is None)
        out.parent.mkdir(parents=True, exist_ok=True)
        nodes = open_asset_graph(ui.url, out)
        print(f"{', '.join(nodes)} drawn; saved {out}")
        plots = out.parent / "kpi_plots.png"
        open_asset_plots(ui.url, "order_kpis_daily", ["deliveries", "open_orders"], plots)
        print(f"order_kpis_daily's plots saved {plots}")
        return 0 if shut_down(process) else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images/asset_graph.png")))
