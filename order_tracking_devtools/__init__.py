"""Development tools shared by the tests, the demos and the benchmarks (installed with the dev
extra): a GCS protocol server (fake-gcs-server), a stand-in of the Databricks REST API, the
`dagster` CLI command of a day's run, and `dagster dev` / daemon processes with a client of the
Dagster UI. Nothing in `order_tracking` imports them."""
