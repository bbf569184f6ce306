"""A site's local inputs to a job: one per analysis, computed on its own rows in the clear.

The same for every engine: each kind's declared statistics
(:mod:`securecalc.core.local_stats`) evaluated by numpy on a :class:`Table`, or by any
:class:`LocalData` (a database: :mod:`securecalc.sources.pushdown`) with identical values.
Only the output (a few numbers per analysis, or for order statistics the site's counts per
grid point, bounded by the grid) enters a secure computation. Each engine's
adapter shapes these inputs for its engine (:mod:`securecalc.engines.mpc.adapter`,
:mod:`securecalc.engines.ckks.adapter`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from securecalc.core.analyses import Analysis
from securecalc.core.job import Job
from securecalc.core.kinds import kind_of
from securecalc.core.local_stats import LocalQuery, Value, evaluate
from securecalc.core.plans import MAX_ROWS_PER_SITE, Plan
from securecalc.core.privacy import NoisePlan, RandomSource, add_noise, sample_noise
from securecalc.core.table import Table
from securecalc.core.where import Predicate, parse_where
from securecalc.errors import DataError


@dataclass(frozen=True)
class LocalContribution:
    """One analysis's input from one site, under the plan the engine runs."""

    analysis: Analysis
    plan: Plan
    local: Any
    #: the noise share ``local`` carries (differentially private analyses), else None
    noise: NoisePlan | None = None

    def floor(self, slot: int) -> int:
        """The least value this site may input in count slot ``slot``: 0, or minus the
        largest noise share."""
        return 0 if self.noise is None else -math.ceil(self.noise.caps[slot])


class LocalData(Protocol):
    """A site's rows as the local phase reads them."""

    @property
    def n_rows(self) -> int: ...

    def values(self, items: Sequence[tuple[LocalQuery, Predicate]]) -> list[tuple[Value, ...]]:
        """The statistics of each query on the rows its predicate keeps (a database
        computes them all in one pass)."""
        ...

    def table(self, columns: Sequence[str]) -> Table:
        """The rows themselves, for a kind whose input needs them (no ``local_query``)."""
        ...


@dataclass(frozen=True)
class TableData:
    """:class:`LocalData` of rows in memory."""

    rows: Table

    @property
    def n_rows(self) -> int:
        return self.rows.n_rows

    def values(self, items: Sequence[tuple[LocalQuery, Predicate]]) -> list[tuple[Value, ...]]:
        return [evaluate(query, self.rows, predicate.evaluate(self.rows))
                for query, predicate in items]

    def table(self, columns: Sequence[str]) -> Table:
        return self.rows


def local_inputs(job: Job, data: LocalData) -> list[Any]:
    """Every analysis's input from ``data`` (before any noise), in job order: the declared
    statistics of all analyses in one request, rows only for a kind that needs them."""
    declared: dict[int, tuple[LocalQuery, Predicate]] = {}
    for i, analysis in enumerate(job.analyses):
        query = kind_of(analysis.kind).local_query(analysis, job.schema, job.options)
        if query is not None:
            declared[i] = (query, parse_where(analysis.where, job.schema))
    values = dict(zip(declared, data.values(list(declared.values())), strict=True))
    out = []
    for i, analysis in enumerate(job.analyses):
        kind = kind_of(analysis.kind)
        if i in declared:
            out.append(kind.assemble(analysis, job.schema, declared[i][0], values[i]))
            continue
        predicate = parse_where(analysis.where, job.schema)
        columns = [*kind.columns({**analysis.options, "column": analysis.column}),
                   *sorted(predicate.columns)]
        table = data.table(list(dict.fromkeys(columns)))
        out.append(kind.local(analysis, job.schema, table, predicate.evaluate(table),
                              job.options))
    return out


def local_contributions(job: Job, data: Table | LocalData, engine: str,
                        rng: RandomSource | None = None) -> list[LocalContribution]:
    """Local inputs for every analysis of the job, in job order.

    A differentially private analysis's input carries this site's noise share (drawn from
    ``rng``, by default the system's cryptographic generator; see
    :mod:`securecalc.core.privacy`)."""
    source: LocalData = TableData(data) if isinstance(data, Table) else data
    if source.n_rows > MAX_ROWS_PER_SITE:
        raise DataError(f"this site's rows exceed the limit of {MAX_ROWS_PER_SITE} per site")
    parts = []
    inputs = local_inputs(job, source)
    for analysis, (plan, noise), local in zip(job.analyses, job.plans_and_noise(engine), inputs,
                                              strict=True):
        if noise is not None:
            local = add_noise(local, sample_noise(noise, rng))
        parts.append(LocalContribution(analysis, plan, local, noise))
    return parts
