"""linreg (ordinary least squares) and logreg (logistic regression by Newton's method).

Predictors ``x`` are numeric columns or category columns; a category expands to 0/1
indicators of its levels after the first (the reference level), named ``column[level]``.
The intercept is ``(intercept)``. Numeric predictors enter the pooled statistics centred at
their public centres (for conditioning); coefficients and standard errors are reported for
the uncentred model, as statsmodels gives them. Rows missing the outcome or any predictor
are left out (listwise).

Collinear predictors (a constant predictor, a level absent from the pooled data, or a
predictor that is a linear combination of the intercept and earlier ones, up to
1 - R^2 < 1e-10) stop the analysis with a :class:`~securecalc.errors.DataError` naming them.
Under a ``min_cohort`` gate an absent level is withheld instead: both kinds add the counts per
level of their category and 0/1 columns (:class:`~securecalc.core.kinds._levels.Levels`; logreg
in its first round only) to their cohort gate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from securecalc.core.distributions import Normal, StudentT
from securecalc.core.kinds._levels import Levels
from securecalc.core.kinds.base import Kind, StudyOptions
from securecalc.core.kinds.bounds import ROWS, scale, triangle
from securecalc.core.kinds.design import Term, design_terms, numeric_term
from securecalc.core.kinds.linalg import LDL, Matrix, Partitioned, collinearity, dot
from securecalc.core.kinds.moment_sums import moment_local, moment_plan, moments_from
from securecalc.core.kinds.options import (
    binary_column,
    numeric_column,
    optional_number,
    predictor_list,
)
from securecalc.core.kinds.rows import binary_values, present
from securecalc.core.plans import IterativePlan, Plan, SumPlan
from securecalc.core.schema import Schema
from securecalc.core.table import Table
from securecalc.errors import DataError

if TYPE_CHECKING:  # annotations only: analyses imports the kinds
    from securecalc.core.analyses import Analysis

INTERCEPT = "(intercept)"
_X = "predictors: numeric columns, or category columns (indicators of every level but the first)"


def json_float(value: Any) -> float | None:
    """A float, or None when it is not finite."""
    if value is None:
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def _problems(part: Partitioned, raw_diagonal: Sequence[Fraction],
              names: Sequence[str]) -> str | None:
    problems = collinearity(part, raw_diagonal, names)
    return f"collinear predictors: {'; '.join(problems)}; drop or merge them" if problems \
        else None


def _coefficients(part: Partitioned | None, factor: LDL | None, beta: Sequence[float],
                  terms: Sequence[Term], scale2: float, dist: Any, stat: str,
                  shift: Fraction = Fraction(0)) -> dict[str, dict[str, float | None]]:
    """Coefficients of the uncentred model, with standard errors from ``scale2 * H^{-1}``.

    The fitted model is ``y - shift = b0 + sum b_j (x_j - c_j)``: the uncentred intercept is
    ``a . b + shift`` with ``a = (1, -c_1, ..., -c_q)`` (variance ``a' H^{-1} a``); the slopes
    are unchanged.
    """
    a = [Fraction(1), *(-t.center for t in terms)]
    intercept = math.fsum([*(float(ai) * bi for ai, bi in zip(a, beta, strict=True)),
                           float(shift)])
    if factor is None or part is None:
        variances: list[float | None] = [None] * len(beta)
    else:
        variances = [scale2 * part.intercept_variance(factor, a),
                     *(scale2 * v for v in factor.inverse_diagonal())]
    names = [INTERCEPT, *(t.name for t in terms)]
    return {name: _test(est, var, dist, stat)
            for name, est, var in zip(names, [intercept, *beta[1:]], variances, strict=True)}


def _test(estimate: float, variance: float | None, dist: Any,
          stat: str) -> dict[str, float | None]:
    se = math.sqrt(variance) if variance is not None and variance > 0 else None
    value = estimate / se if se else None
    p_value = float(2 * dist.sf(abs(value))) if value is not None else None
    return {"estimate": float(estimate), "se": se, stat: value, "p_value": p_value}


class LinReg(Kind):
    """Ordinary least squares of ``y`` on an intercept and ``x``, from the pooled X'X, X'y,
    y'y and n: the intercept is eliminated in exact arithmetic (centring about the pooled
    means), the rest solved in doubles.

    value: ``{"coefficients": {name: {"estimate", "se", "t", "p_value"}}, "r_squared",
    "adj_r_squared", "sigma", "df_resid", "n"}``; None when n is not larger than the number
    of coefficients.
    """

    name = "linreg"
    reveals: ClassVar[str] = (
        "the pooled n and the cross-products of the outcome and every predictor: the means, "
        "variances and covariances of all of them (X'X, X'y and y'y). Released only if every "
        "level of a category predictor, every value of a 0/1 column, and each one's "
        "complement holds at least min_cohort rows; a numeric predictor with few rows far "
        "from the others (high leverage) is not gated, and its coefficient can still come "
        "close to those rows' values.")
    keys: ClassVar[Mapping[str, str]] = {"y": "the numeric outcome column", "x": _X}
    required: ClassVar[frozenset[str]] = frozenset({"y", "x"})

    def parse(self, raw: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
        y = numeric_column(raw, schema, "y")
        return {"y": y, "x": predictor_list(raw, schema, "x", outcome=y)}

    def columns(self, options: Mapping[str, Any]) -> tuple[str, ...]:
        return (options["y"], *options["x"])

    def _terms(self, analysis: Analysis, schema: Schema) -> list[Term]:
        return [*design_terms(schema, analysis.options["x"]),
                numeric_term(schema[analysis.options["y"]])]

    def _levels(self, analysis: Analysis, schema: Schema) -> Levels:
        return Levels.of(schema, self.columns(analysis.options))

    def plan(self, analysis: Analysis, schema: Schema, engine: str,
             study: StudyOptions) -> Plan:
        terms = self._terms(analysis, schema)
        return self._levels(analysis, schema).after(
            moment_plan([t.half_range for t in terms], [t.integral for t in terms]))

    def cohort_slots(self, analysis: Analysis, schema: Schema, plan: Plan) -> tuple[int, ...]:
        # n of the complete cases, then the counts in and out of every level (the tail)
        assert isinstance(plan, SumPlan)
        return self._levels(analysis, schema).cohort_slots(plan)

    def local(self, analysis: Analysis, schema: Schema, table: Table, mask: np.ndarray,
              study: StudyOptions) -> tuple[Any, ...]:
        terms = self._terms(analysis, schema)
        keep = present(table, self.columns(analysis.options), mask)
        return (*moment_local([t.moment_input(table, keep) for t in terms]),
                *self._levels(analysis, schema).local(table, keep))

    def finish(self, analysis: Analysis, schema: Schema, released: Any,
               study: StudyOptions) -> tuple[Any, int]:
        terms = self._terms(analysis, schema)
        x_terms, y_term = terms[:-1], terms[-1]
        q = len(x_terms)
        p = q + 1
        m = moments_from(released, q + 1)
        n = m.n
        if n <= p:
            return None, n
        gram: Matrix = [[Fraction(n), *m.S[:q]]] + [[m.S[j], *m.C[j][:q]] for j in range(q)]
        part = Partitioned.of(gram)
        problem = _problems(part, [m.C[j][j] for j in range(q)], [t.name for t in x_terms])
        factor = LDL.of(part.K)
        if problem or factor is None:
            problem = problem or "collinear predictors (X'X is singular)"
            raise DataError(f"analysis {analysis.id!r}: {problem}")
        xy = [m.S[q], *(m.C[j][q] for j in range(q))]
        beta = part.solve(factor, xy)
        # residual sum of squares: y'y - b'X'y, about the pooled means
        centred_xy = [float(m.covariance(j, q)) for j in range(q)]
        rss = max(0.0, float(m.covariance(q, q)) - dot(beta[1:], centred_xy))
        df = n - p
        sigma2 = rss / df
        coefficients = _coefficients(part, factor, beta, x_terms, sigma2, StudentT(df), "t",
                                     y_term.center)
        tss = m.covariance(q, q)
        r2 = 1 - rss / float(tss) if tss > 0 else None
        value = {
            "coefficients": coefficients,
            "r_squared": json_float(r2),
            "adj_r_squared": json_float(1 - (1 - r2) * (n - 1) / df) if r2 is not None else None,
            "sigma": math.sqrt(sigma2),
            "df_resid": df,
            "n": n,
        }
        return value, n


# --------------------------------------------------------------------------- logistic


def _expit(eta: np.ndarray) -> np.ndarray:
    """The logistic function without overflow (numpy only: it runs at every site)."""
    e = np.exp(-np.abs(eta))
    out: np.ndarray = np.where(eta >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return out

#: an upper bound of log 2, for the log-likelihood's bound
_LOG2_UP = Fraction(7, 10)


@dataclass(frozen=True)
class LogisticProgram:
    """Newton's method on pooled gradient and Hessian (see :class:`LogReg`).

    Round r contributes, at the public coefficients ``beta`` (of the centred design):
    ``n``, the gradient ``sum x (y - mu)`` (p slots), the Hessian ``sum w x x'`` (upper
    triangle) with ``w = mu (1 - mu)``, and the log-likelihood; the first round also the
    level counts (``data["levels"]``), on which the engines gate it. The Newton step eliminates the
    intercept exactly from the released totals and solves the rest in pure-Python doubles
    (see :class:`~securecalc.core.kinds.linalg.Partitioned`), so every party derives
    bit-identical states whatever its platform.
    """

    analysis_id: str
    names: tuple[str, ...]  # coefficient names, intercept first
    half_ranges: tuple[Fraction, ...]  # largest |x_j| per design column (intercept: 1)
    max_iter: int
    tol: float
    #: count slots the first round adds: the counts per level of the outcome and of the
    #: category and 0/1 predictors (see :class:`Levels`), which gate the release
    level_counts: int = 0

    @property
    def max_rounds(self) -> int:
        return self.max_iter + 1

    @property
    def p(self) -> int:
        return len(self.names)

    def initial_state(self) -> dict[str, Any]:
        return {"beta": [0.0] * self.p, "iteration": 0, "phase": "newton", "converged": False,
                "step": None, "n": None, "hessian": None, "log_likelihood": None,
                "error": None}

    def round_plan(self, state: Any) -> SumPlan:
        a = self.half_ranges
        eta_bound = sum((abs(Fraction(b)) * ai for b, ai in zip(state["beta"], a, strict=True)),
                        Fraction(0))
        flags = [True] + [False] * (self.p + len(triangle(self.p)) + 1)
        bounds: list[Any] = [ROWS, *(ROWS * ai for ai in a)]
        scales: list[Any] = [1, *(scale(ai) for ai in a)]
        for j, k in triangle(self.p):
            bounds.append(ROWS * a[j] * a[k] / 4)
            scales.append(scale(a[j]) * scale(a[k]) / 4)
        bounds.append(ROWS * (eta_bound + _LOG2_UP))
        scales.append(eta_bound + _LOG2_UP)
        plan = SumPlan(tuple(flags), tuple(bounds), tuple(scales))
        return SumPlan.concat([plan, SumPlan.counts(self.level_counts)]) \
            if self.first(state) else plan

    @property
    def width(self) -> int:
        """Slots of every round but the level counts of the first."""
        return 2 + self.p + len(triangle(self.p))

    @staticmethod
    def first(state: Any) -> bool:
        return state["n"] is None

    def local(self, state: Any, data: Any) -> tuple[Any, ...]:
        x, y = data["X"], data["y"]
        n = int(x.shape[0])
        beta = np.asarray(state["beta"], dtype=np.float64)
        eta = x @ beta
        mu = _expit(eta)
        w = mu * (1.0 - mu)
        gradient = x.T @ (y - mu)
        hessian = x.T @ (x * w[:, None])
        ll = float(np.sum(np.where(y == 1, -np.logaddexp(0.0, -eta), -np.logaddexp(0.0, eta))))
        return (n, *(float(g) for g in gradient),
                *(float(hessian[j, k]) for j, k in triangle(self.p)), ll,
                *(data["levels"] if self.first(state) else ()))

    def _unpack(self, totals: Sequence[Fraction]) -> tuple[int, list[Fraction], Matrix,
                                                            Fraction]:
        values = [Fraction(t) for t in totals[:self.width]]
        p = self.p
        gradient = values[1:1 + p]
        hessian = [[Fraction(0)] * p for _ in range(p)]
        for (j, k), v in zip(triangle(p), values[1 + p:-1], strict=True):
            hessian[j][k] = hessian[k][j] = v
        return int(round(values[0])), gradient, hessian, values[-1]

    def advance(self, state: Any, totals: Sequence[Fraction]) -> dict[str, Any]:
        n, gradient, hessian, ll = self._unpack(totals)
        new = dict(state)
        new["hessian"] = [float(hessian[j][k]) for j, k in triangle(self.p)]
        new["log_likelihood"] = float(ll)
        new["n"] = n
        if state["phase"] == "final":
            new["phase"] = "done"
            return new
        if n <= self.p or not hessian[0][0] > 0:  # too few rows; or every weight underflowed
            new["phase"] = "done"
            return new
        part = Partitioned.of(hessian)
        if state["iteration"] == 0:
            # at beta = 0 every weight is 1/4: the Hessian is X'X / 4
            new["error"] = _problems(part, [hessian[j][j] for j in range(1, self.p)],
                                     self.names[1:])
            if new["error"]:
                new["phase"] = "done"
                return new
        factor = LDL.of(part.K)
        if factor is None:  # the weights underflowed: (quasi-)separation
            new["phase"] = "done"
            return new
        step = part.solve(factor, gradient)
        beta = [b + d for b, d in zip(state["beta"], step, strict=True)]
        if not all(math.isfinite(b) and abs(b) < 1e300 for b in beta):
            new["phase"] = "done"
            return new
        size = max(abs(d) for d in step)
        new.update(beta=beta, iteration=state["iteration"] + 1, step=size)
        if size < self.tol:
            new.update(converged=True, phase="final")
        elif new["iteration"] >= self.max_iter:
            new["phase"] = "final"
        return new

    def done(self, state: Any) -> bool:
        return bool(state["phase"] == "done")


class LogReg(Kind):
    """Logistic regression of a 0/1 outcome on an intercept and ``x``, by Newton's method
    (IRLS) on the pooled gradient and Hessian, matching ``statsmodels`` ``Logit.fit()``.

    ``y``: an int column with bounds within [0, 1], or a two-level category (its second level
    counts as 1). Iterates until the largest Newton step is below ``tol`` (default 1e-8) or
    ``max_iter`` (default 25) steps; one more round evaluates the Hessian and log-likelihood
    at the final coefficients (standard errors from the inverse Hessian there). Perfect
    separation or non-convergence give ``converged: false`` with the last iterate, never an
    error.

    value: ``{"coefficients": {name: {"estimate", "se", "z", "p_value"}}, "iterations",
    "converged", "log_likelihood", "n"}``; None when n is not larger than the number of
    coefficients.
    """

    name = "logreg"
    dp_unsupported: ClassVar[str] = ("its Newton iterations release a data-dependent number "
                                     "of rounds of sums")
    reveals: ClassVar[str] = (
        "the pooled n, gradient, Hessian and log-likelihood at every iterate (so every "
        "iterate's coefficients); the first Hessian is X'X/4, so the means, variances and "
        "covariances of the predictors. Released only if both outcomes, every level of a "
        "category predictor, every value of a 0/1 predictor, and each one's complement hold "
        "at least min_cohort rows (decided before the first round is opened); high-leverage "
        "numeric predictors are not gated, as for linreg.")
    keys: ClassVar[Mapping[str, str]] = {
        "y": "the 0/1 outcome: an int column within [0, 1] or a two-level category "
             "(second level = 1)",
        "x": _X,
        "max_iter": "largest number of Newton steps (default 25)",
        "tol": "convergence when the largest step is below this (default 1e-8)",
    }
    required: ClassVar[frozenset[str]] = frozenset({"y", "x"})

    def parse(self, raw: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
        y = binary_column(raw, schema, "y")
        out: dict[str, Any] = {"y": y, "x": predictor_list(raw, schema, "x", outcome=y)}
        if "max_iter" in raw:
            out["max_iter"] = optional_number(raw, "max_iter", None, whole=True, hi=1000)
        if "tol" in raw:
            out["tol"] = optional_number(raw, "tol", None)
        return out

    def columns(self, options: Mapping[str, Any]) -> tuple[str, ...]:
        return (options["y"], *options["x"])

    def _terms(self, analysis: Analysis, schema: Schema) -> list[Term]:
        return design_terms(schema, analysis.options["x"])

    def _levels(self, analysis: Analysis, schema: Schema) -> Levels:
        return Levels.of(schema, self.columns(analysis.options))

    def program(self, analysis: Analysis, schema: Schema) -> LogisticProgram:
        terms = self._terms(analysis, schema)
        return LogisticProgram(
            analysis_id=analysis.id,
            names=(INTERCEPT, *(t.name for t in terms)),
            half_ranges=(Fraction(1), *(t.half_range for t in terms)),
            max_iter=int(analysis.options.get("max_iter", 25)),
            tol=float(analysis.options.get("tol", 1e-8)),
            level_counts=self._levels(analysis, schema).width)

    def plan(self, analysis: Analysis, schema: Schema, engine: str,
             study: StudyOptions) -> Plan:
        return IterativePlan(self.program(analysis, schema))

    def cohort_slots(self, analysis: Analysis, schema: Schema, plan: Plan) -> tuple[int, ...]:
        """n and the level counts of the first round: every later round sums the same rows."""
        program = self.program(analysis, schema)
        return (0, *range(program.width, program.width + program.level_counts))

    def local(self, analysis: Analysis, schema: Schema, table: Table, mask: np.ndarray,
              study: StudyOptions) -> dict[str, Any]:
        """``{"X": design (float64, intercept first, numeric columns centred), "y": 0/1,
        "levels": the level counts}``."""
        terms = self._terms(analysis, schema)
        keep = present(table, self.columns(analysis.options), mask)
        n = int(np.count_nonzero(keep))
        x = np.empty((n, len(terms) + 1), dtype=np.float64)
        x[:, 0] = 1.0
        for j, term in enumerate(terms, start=1):
            x[:, j] = term.values(table, keep)
        y = binary_values(table, schema, analysis.options["y"], keep).astype(np.float64)
        return {"X": x, "y": y, "levels": self._levels(analysis, schema).local(table, keep)}

    def finish(self, analysis: Analysis, schema: Schema, released: Any,
               study: StudyOptions) -> tuple[Any, int]:
        state = released
        n = int(state["n"] or 0)
        if state["error"]:
            raise DataError(f"analysis {analysis.id!r}: {state['error']}")
        program = self.program(analysis, schema)
        p = program.p
        if n <= p or state["hessian"] is None:
            return None, n
        hessian: Matrix = [[Fraction(0)] * p for _ in range(p)]
        for (j, k), v in zip(triangle(p), state["hessian"], strict=True):
            hessian[j][k] = hessian[k][j] = Fraction(v)
        part = Partitioned.of(hessian) if hessian[0][0] > 0 else None
        coefficients = _coefficients(part, LDL.of(part.K) if part else None, state["beta"],
                                     self._terms(analysis, schema), 1.0, Normal(), "z")
        value = {
            "coefficients": coefficients,
            "iterations": int(state["iteration"]),
            "converged": bool(state["converged"]),
            "log_likelihood": json_float(state["log_likelihood"]),
            "n": n,
        }
        return value, n


REGRESSION = (LinReg(), LogReg())
