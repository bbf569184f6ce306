"""What a node contributes to a job: its local statistics, shaped for each engine.

Everything here runs on the node's own rows in the clear, with numpy; only its output (a few
numbers per analysis) enters a secure computation.
"""

from __future__ import annotations

from dataclasses import dataclass

from securecalc.core.analyses import Analysis
from securecalc.core.encoding import ckks_encode, mpc_bound, mpc_encode
from securecalc.core.job import Job
from securecalc.core.statistics import (
    MAX_ROWS_PER_SITE,
    Number,
    StatLayout,
    layout_of,
    local_statistics,
)
from securecalc.core.table import Table
from securecalc.errors import DataError


@dataclass(frozen=True)
class LocalContribution:
    analysis: Analysis
    layout: StatLayout
    stats: tuple[Number, ...]


def contributions(job: Job, table: Table) -> list[LocalContribution]:
    """Local statistics for every analysis of the job, in job order."""
    if table.n_rows > MAX_ROWS_PER_SITE:
        raise DataError(f"{table.n_rows} rows exceed the limit of {MAX_ROWS_PER_SITE} per site")
    return [LocalContribution(a, layout_of(a, job.schema), local_statistics(a, job.schema, table))
            for a in job.analyses]


def mpc_inputs(parts: list[LocalContribution]) -> list[tuple[str, tuple[int, ...], int]]:
    """Per analysis: (id, integers to share, bound on each integer)."""
    return [(p.analysis.id, mpc_encode(p.layout, p.stats), mpc_bound(p.layout)) for p in parts]


def ckks_inputs(parts: list[LocalContribution]) -> list[float]:
    """All analyses' statistics packed into one vector, in job order."""
    return [v for p in parts for v in ckks_encode(p.layout, p.stats)]


def ckks_width(job: Job) -> int:
    """Length of the packed vector every site sends for this job."""
    return sum(layout_of(a, job.schema).width for a in job.analyses)
