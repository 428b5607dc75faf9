"""The rule of the whole product: per tracking_num, the newest row by the sequence wins.

The sequence is (last_update_timestamp, _landed_at, _source_file, _source_line): the greatest
timestamp, ties going to the later-landed file, then the later line. Taking a maximum is
commutative, associative and idempotent, so the result does not depend on the order in which
files land or days are merged or re-merged.
"""

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from order_tracking.schema import SEQUENCE, TRACKING_NUM


def newer_than(new: str, old: str) -> str:
    """SQL predicate: row `new` comes after row `old` in the sequence."""
    predicate = f"{new}.{SEQUENCE[-1]} > {old}.{SEQUENCE[-1]}"
    for column in reversed(SEQUENCE[:-1]):
        predicate = (
            f"{new}.{column} > {old}.{column} "
            f"OR ({new}.{column} = {old}.{column} AND ({predicate}))"
        )
    return predicate


def mark_latest_per_tracking_num(
    orders: DataFrame, among: Column, per: tuple[str, ...] = (TRACKING_NUM,)
) -> DataFrame:
    """Adds `_latest`, true on one row per tracking_num (or per `per`) among the rows where
    `among` holds: the greatest last_update_timestamp, then later landing, then later line."""
    newest_first = Window.partitionBy(among, *per).orderBy(*[F.desc(c) for c in SEQUENCE])
    return orders.withColumn("_latest", among & (F.row_number().over(newest_first) == 1))


def latest_per_tracking_num(orders: DataFrame) -> DataFrame:
    """Keep one row per tracking_num: greatest last_update_timestamp, then later landing, then later line."""
    marked = mark_latest_per_tracking_num(orders, F.lit(True))
    return marked.where("_latest").drop("_latest")
