"""The engine's own aggregation over the sweep's rows: what the five-analysis bench study
needs, written by hand in plain SQL (native double sums, no fixed point, no catalogue check).

One SELECT computes the count and every sum (mean and variance of ``value``; the linear
model's cross-products of 1, x1..x10 and y), one grouped SELECT the counts per (time, event)
(Kaplan-Meier), per (cat_a, cat_b) cell (crosstab) and per quantile-grid bin of ``value``
(quantiles; the grid the node uses: step 0.05). The bench study has no filter; a row counts
where the columns it reads are present, as in the node's queries.
"""

from __future__ import annotations

import os
from typing import Any

from securecalc_bench.datasets import PREDICTORS

#: the quantile grid's step of ``value`` (as the node's quantiles plan on the bench schema)
QUANTILE_STEP = 0.05


def _sums() -> list[str]:
    terms = [*PREDICTORS, "y"]
    out = ["count(*)", "sum(value)", "sum(value * value)"]
    out += [f"sum({t})" for t in terms]
    out += [f"sum({a} * {b})" for i, a in enumerate(terms) for b in terms[i:]]
    return out


def scalar_sql(relation: str) -> str:
    """Count and sums in one scan."""
    return f"SELECT {', '.join(_sums())} FROM {relation}"


def grouped_sql(relation: str) -> str:
    """Counts per time and event, per category cell and per value bin, in one scan."""
    vbin = f"CAST(ceil(value / {QUANTILE_STEP}) AS BIGINT)"
    return (f"SELECT time, event, cat_a, cat_b, {vbin} AS vbin, count(*) FROM {relation} "
            "GROUP BY GROUPING SETS ((time, event), (cat_a, cat_b), (vbin))")


def run_plain(source: dict[str, Any]) -> int:
    """Run both queries on ``source`` (a ``[[source]]`` table of kind file/parquet or
    postgres/table); the number of result rows."""
    if source["kind"] == "file":
        import duckdb

        relation = f"read_parquet('{source['path']}')"
        with duckdb.connect() as conn:
            results = [conn.execute(q).fetchall()
                       for q in (scalar_sql(relation), grouped_sql(relation))]
    else:
        import psycopg

        relation = f'"{source["table"]}"'
        with psycopg.connect(host=source["host"], port=source["port"],
                             dbname=source["database"], user=source["user"],
                             password=os.environ[source["password_env"]]) as conn:
            results = [conn.execute(q).fetchall()
                       for q in (scalar_sql(relation), grouped_sql(relation))]
    return sum(len(r) for r in results)


__all__ = ["QUANTILE_STEP", "grouped_sql", "run_plain", "scalar_sql"]
