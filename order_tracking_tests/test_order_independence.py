"""The final table does not depend on the order partitions are materialized or re-materialized in.

Each scenario runs the whole pipeline (raw -> staged -> order_tracking) per day, in its own
lakehouse, and must end with the same table as the day-order run (the end-to-end test's table).
"""

import pytest

from order_tracking.sample_data import land_sample_files
from order_tracking_tests.helpers import SAMPLE_DAYS as DAYS
from order_tracking_tests.helpers import business_rows, expected_rows, run_days

# Random orders on generated data are test_property.py's job; here, the user's own data.
SCENARIOS = {"reverse-with-reruns": list(reversed(DAYS)) + ["2023-01-03", "2023-01-05"]}


@pytest.mark.parametrize("days", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_any_materialization_order_gives_the_same_table(spark, local_resources, landing_dir, lakehouse_dir, days):
    assert days != DAYS
    land_sample_files(landing_dir)

    run_days(local_resources, days)

    table = spark.read.format("delta").load(str(lakehouse_dir / "order_tracking"))
    assert business_rows(table) == expected_rows()
    lineage = {r.tracking_num: (r._source_file, r._source_line) for r in table.collect()}
    assert lineage["TRK1019"] == ("raw/dt=2023-01-05/order_tracking_2023_01_05.csv", 4)
