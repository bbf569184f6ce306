"""quantiles, median, min, max: order statistics of one numeric column.

Definition: numpy's ``method="inverted_cdf"``: the p-quantile of N values is the k-th
smallest with ``k = max(1, ceil(p * N))``, so p = 0 is the minimum and p = 1 the maximum.
``p * N`` is computed exactly with p read as the decimal it prints as (0.07 is 7/100), the
same rule as the MPC search; numpy multiplies in float64 and, in the rare cases where that
rounds p * N up past a whole number (0.07 * 100 = 7.000000000000001), takes the next value.
Rows with the column missing are skipped.

Values are placed on a public grid ``lo, lo + r, lo + 2r, ...`` (lo = the column's min, r the
resolution): each value is rounded **up** to the next grid point (``ceil((x - lo) / r)``;
a value within 1e-9 grid steps above a grid point counts as on it, so data recorded at the
grid's own precision are not pushed up by float rounding). The result is the grid point of
the k-th smallest value: exact for int columns (resolution 1, the default), otherwise at
most one resolution above the exact quantile. Float columns default to r = (max - min) /
10000; the option ``resolution`` sets it (a whole number for int columns).

MPC runs a :class:`~securecalc.core.plans.SearchPlan` over the pooled counts. CKKS runs a
one-round :class:`~securecalc.core.plans.IterativePlan` whose round is a
:class:`~securecalc.core.plans.SumPlan` histogram of counts per grid point (at most
:data:`~securecalc.core.limits.CKKS_GRID_POINTS`), and the coordinator reads the quantiles
off it. Each site's input is the same on both engines (its counts per grid index, a
:class:`~securecalc.core.local_stats.Histogram`, whose memory is bounded by the grid):
:meth:`Kind.local` is not told the engine.

Gates, the same on both engines: nothing is released unless N reaches ``min_cohort`` (on MPC
decided before N is opened), and the p-quantile only if its rank k satisfies
``min_cell_count <= k <= N - min_cell_count + 1`` (else None, named in the note). p = 0 and 1
(min and max) are exempt from the rank rule: they are one patient's value by definition, and a
node runs them only if its policy sets ``allow_extremes``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from securecalc.core.kinds.base import Kind, SearchResult, StudyOptions
from securecalc.core.kinds.options import number_list, numeric_column, option_error, optional_number
from securecalc.core.limits import CKKS_GRID_POINTS, PROBS
from securecalc.core.local_stats import Bins, GridIndex, Histogram, LocalQuery, Value
from securecalc.core.plans import IterativePlan, Plan, SearchPlan, SumPlan, rank_releasable
from securecalc.core.schema import Column, Schema

if TYPE_CHECKING:  # annotations only: analyses imports the kinds
    from securecalc.core.analyses import Analysis

#: finest grid the search accepts
MAX_POINTS = 2**40
#: grid steps within which a value counts as on a grid point (float columns)
GRID_TOLERANCE = 1e-9
#: default number of grid steps across a float column's range
DEFAULT_STEPS = 10000


def target_rank(p: float, n: int) -> int:
    """1-based rank of the p-quantile of n values: ``max(1, ceil(p * n))`` exactly, with p
    the decimal it prints as (see the module docstring)."""
    return max(1, math.ceil(Fraction(repr(float(p))) * n))


@dataclass(frozen=True)
class Grid:
    """The public grid of a column: ``lo + i * resolution`` for ``i < points``."""

    lo: float
    resolution: float
    points: int
    integral: bool

    @property
    def hi(self) -> float:
        return self.lo + (self.points - 1) * self.resolution

    def indices(self, values: np.ndarray) -> np.ndarray:
        """Sorted int64 grid indices of ``values`` (each rounded up to the grid)."""
        if self.integral:
            step = int(self.resolution)
            shifted = values.astype(np.int64) - np.int64(int(self.lo))
            idx = -((-shifted) // step)
        else:
            q = (values.astype(np.float64) - self.lo) / self.resolution
            idx = np.ceil(q - GRID_TOLERANCE).astype(np.int64)
        return np.sort(np.clip(idx, 0, self.points - 1))

    def value(self, index: int) -> int | float:
        if self.integral:
            return int(self.lo) + int(index) * int(self.resolution)
        return self.lo + int(index) * self.resolution


def grid_of(column: Column, resolution: Any) -> Grid:
    assert column.min is not None and column.max is not None
    if column.type == "int":
        step = int(resolution) if resolution is not None else 1
        int_span = int(column.max) - int(column.min)
        return Grid(column.min, float(step), -(-int_span // step) + 1, True)
    span = column.max - column.min
    r = float(resolution) if resolution is not None else (span / DEFAULT_STEPS or 1.0)
    steps = max(0, math.ceil(span / r - GRID_TOLERANCE))
    return Grid(column.min, r, steps + 1, False)


def _resolution(raw: Mapping[str, Any], column: Column) -> Any:
    integral = column.type == "int"
    value = optional_number(raw, "resolution", None, whole=integral)
    if value is not None:
        grid = grid_of(column, value)
        if grid.points > MAX_POINTS:
            raise option_error(f"is too fine: {grid.points} grid points across the range of "
                               f"{column.name!r} (at most 2**40)", "resolution")
    return value


@dataclass(frozen=True)
class HistogramProgram:
    """CKKS: one round in which every site contributes its counts per grid point."""

    points: int
    max_rounds: int = 1

    def initial_state(self) -> dict[str, Any]:
        return {"counts": None}

    def round_plan(self, state: Any) -> SumPlan:
        """A count per grid point, then N (the cohort gate's slot)."""
        return SumPlan.counts(self.points + 1)

    def local(self, state: Any, data: Any) -> tuple[int, ...]:
        """Counts per grid point and N, from sorted indices or a :class:`Histogram`."""
        if isinstance(data, Histogram):
            return (*data.dense(self.points), data.n)
        indices = np.asarray(data, dtype=np.int64)
        return (*np.bincount(indices, minlength=self.points).tolist(), len(indices))

    def advance(self, state: Any, totals: Sequence[Fraction]) -> dict[str, Any]:
        return {"counts": [int(round(t)) for t in totals[:self.points]]}

    def done(self, state: Any) -> bool:
        return state.get("counts") is not None


class OrderKind(Kind):
    """Base of the order-statistic kinds; subclasses say which probabilities they want."""

    engines: ClassVar[frozenset[str]] = frozenset({"mpc", "ckks"})
    dp_unsupported: ClassVar[str] = ("on MPC its search reveals comparison outcomes on "
                                     "exact counts, which noise on sums does not cover")
    reveals: str = (
        "the pooled n (only when it reaches min_cohort; decided securely on MPC); on MPC the "
        "outcome of every comparison of the search (whether at least k values lie at or below "
        "each probed grid point), which brackets each result between neighbouring probes; on "
        "CKKS the pooled histogram of the column at the grid resolution (every grid point's "
        "count), to the coordinator. A quantile is released only if at least min_cell_count "
        "values lie at or below it and at or above it; min and max (p = 0 or 1) are single "
        "patients' values, run only by nodes whose policy sets allow_extremes.")
    _RESOLUTION = ("grid step (float columns: default (max - min)/10000; int columns: a whole "
                   "number, default 1 = exact); values are rounded up to the grid")
    keys: ClassVar[Mapping[str, str]] = {"column": "the numeric column",
                                         "resolution": _RESOLUTION}
    required: frozenset[str] = frozenset({"column"})

    def probs(self, options: Mapping[str, Any]) -> list[float]:
        raise NotImplementedError

    def parse(self, raw: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
        column = numeric_column(raw, schema)
        out: dict[str, Any] = {"column": column}
        resolution = _resolution(raw, schema[column])
        if resolution is not None:
            out["resolution"] = resolution
        return out

    def columns(self, options: Mapping[str, Any]) -> tuple[str, ...]:
        return (options["column"],)

    def grid(self, analysis: Analysis, schema: Schema) -> Grid:
        assert analysis.column is not None
        return grid_of(schema[analysis.column], analysis.options.get("resolution"))

    def plan(self, analysis: Analysis, schema: Schema, engine: str,
             study: StudyOptions) -> Plan:
        grid = self.grid(analysis, schema)
        if engine == "ckks":
            self.check_engine(analysis, schema, engine)
            return IterativePlan(HistogramProgram(grid.points))
        probs = tuple(float(p) for p in self.probs(analysis.options))
        return SearchPlan(lo=grid.lo, hi=grid.hi, resolution=grid.resolution, probs=probs,
                          min_n=max(1, study.min_cohort), min_rank=study.min_cell_count)

    def cohort_slots(self, analysis: Analysis, schema: Schema, plan: Plan) -> tuple[int, ...]:
        """CKKS: N, after the histogram; MPC: none (the search gates N itself)."""
        return (self.grid(analysis, schema).points,) if isinstance(plan, IterativePlan) else ()

    def extremes(self, analysis: Analysis) -> bool:
        return any(float(p) in (0.0, 1.0) for p in self.probs(analysis.options))

    def _found(self, analysis: Analysis, released: Any,
               study: StudyOptions) -> tuple[int, list[int]]:
        """N and each probability's grid index (-1: withheld by the rank rule)."""
        probs = self.probs(analysis.options)
        if isinstance(released, SearchResult):
            return int(released.n), [int(i) for i in released.indices]
        # the CKKS histogram program's final state: the same rank rule as the MPC search
        counts = np.asarray(released["counts"], dtype=np.int64)
        cumulative = np.cumsum(counts)
        n = int(cumulative[-1]) if counts.size else 0
        ranks = [target_rank(p, n) for p in probs]
        return n, [int(np.searchsorted(cumulative, k, side="left"))
                   if rank_releasable(float(p), k, n, study.min_cell_count) else -1
                   for p, k in zip(probs, ranks, strict=True)]

    def release_note(self, analysis: Analysis, schema: Schema, released: Any,
                     study: StudyOptions) -> str | None:
        n, indices = self._found(analysis, released, study)
        held = [str(p) for p, i in zip(self.probs(analysis.options), indices, strict=True)
                if i < 0]
        if not n or not held:
            return None
        return (f"withheld for p = {', '.join(held)}: fewer than min_cell_count "
                f"({study.min_cell_count}) values lie at or below it or at or above it")

    def check_engine(self, analysis: Analysis, schema: Schema, engine: str) -> None:
        if engine == "ckks":
            CKKS_GRID_POINTS.check(self.grid(analysis, schema).points,
                                   hint=f"analysis {analysis.id!r}: on the ckks engine "
                                   f"{self.name} decrypts a histogram per grid point; set a "
                                   "coarser resolution or use the mpc engine")

    def local_query(self, analysis: Analysis, schema: Schema,
                    study: StudyOptions) -> LocalQuery:
        """The site's histogram over the public grid (each value rounded up to it)."""
        assert analysis.column is not None
        grid = self.grid(analysis, schema)
        key = GridIndex(analysis.column, grid.lo, grid.resolution, grid.points, grid.integral,
                        GRID_TOLERANCE)
        return LocalQuery((analysis.column,), (Bins(key, grid.points),))

    def assemble(self, analysis: Analysis, schema: Schema, query: LocalQuery,
                 values: tuple[Value, ...]) -> Histogram:
        """This site's rows (filter kept, column present) as counts per grid index: memory
        bounded by the grid, not by the rows."""
        return self.local_histogram(values)

    @staticmethod
    def local_histogram(values: tuple[Value, ...]) -> Histogram:
        """The site's input as its sparse histogram over the grid (see
        :class:`~securecalc.core.local_stats.Histogram`: ``n`` and ``at_or_below``)."""
        histogram = values[0]
        assert isinstance(histogram, Histogram)
        return histogram

    def finish(self, analysis: Analysis, schema: Schema, released: Any,
               study: StudyOptions) -> tuple[Any, int]:
        grid = self.grid(analysis, schema)
        n, indices = self._found(analysis, released, study)
        if n == 0:
            return None, 0
        values = [grid.value(i) if i >= 0 else None for i in indices]
        return self.shape(analysis.options, values), n

    def shape(self, options: Mapping[str, Any], values: list[int | float | None]) -> Any:
        return values[0]


class Quantiles(OrderKind):
    """``probs``: probabilities in [0, 1]; value ``{str(p): quantile}`` keyed as written."""

    name = "quantiles"
    keys: ClassVar[Mapping[str, str]] = {
        "column": "the numeric column",
        "probs": "probabilities in [0, 1], e.g. [0.25, 0.5, 0.75]",
        "resolution": OrderKind._RESOLUTION,
    }
    required: frozenset[str] = frozenset({"column", "probs"})

    def parse(self, raw: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
        PROBS.check_length(raw.get("probs"), "probs")
        out = super().parse(raw, schema)
        probs = number_list(raw, "probs", lo=0.0, hi=1.0)
        if len(set(probs)) != len(probs):
            raise option_error("lists a probability twice", "probs")
        out["probs"] = list(raw["probs"])
        return out

    def probs(self, options: Mapping[str, Any]) -> list[float]:
        return list(options["probs"])

    def shape(self, options: Mapping[str, Any], values: list[int | float | None]) -> Any:
        return {str(p): v for p, v in zip(options["probs"], values, strict=True)}


class Single(OrderKind):
    def __init__(self, name: str, p: float):
        self.name = name
        self.p = p

    def probs(self, options: Mapping[str, Any]) -> list[float]:
        return [self.p]


ORDER = (Quantiles(), Single("median", 0.5), Single("min", 0.0), Single("max", 1.0))
