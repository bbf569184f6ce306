"""kaplan_meier and logrank: right-censored survival from pooled counts per time point.

``time`` is a numeric column and ``event`` a 0/1 column (int within [0, 1], or a two-level
category whose second level means the event happened); ``group`` a category column. Rows
missing any of them are left out (listwise).

Time points: for an int time column without ``grid``, every integer from its min to its max
(at most :data:`~securecalc.core.limits.SURVIVAL_POINTS`, and at most
:data:`~securecalc.core.limits.COUNT_CELLS` over all groups); a float time column needs a
``grid``. With ``grid`` (strictly increasing, its last point at or above the column's max),
each time is rounded **up** to the next grid point (times at or below the first point go to
the first point): the analysis then runs on these coarsened times, exactly as if they had
been recorded so.

Each site contributes, per group and time point, its events ``d`` and removals ``r`` (events
plus censorings); the pooled number at risk at time t is the sum of removals at times >= t.

Gates: no released step may rest on fewer than ``min_cell_count`` patients, so every pooled
``d`` and ``r`` must be 0 or at least ``min_cell_count``, and every group (and its
complement, for more than two groups) must hold ``min_cohort`` patients; the plan appends
those group counts (the whole cohort's without ``group``). Otherwise ``kaplan_meier``
withholds that group's curve (null, named in the note) and ``logrank`` the test, and the note
says to coarsen the time points with ``grid``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from securecalc.core.distributions import chi2_sf, norm_ppf
from securecalc.core.kinds._levels import Levels
from securecalc.core.kinds.base import Kind, StudyOptions
from securecalc.core.kinds.options import (
    binary_column,
    category_column,
    number_list,
    numeric_column,
    option_error,
)
from securecalc.core.kinds.rows import binary_values, present
from securecalc.core.limits import COUNT_CELLS, SURVIVAL_POINTS
from securecalc.core.plans import Plan, SumPlan
from securecalc.core.schema import Schema
from securecalc.core.table import Table

if TYPE_CHECKING:  # annotations only: analyses imports the kinds
    from securecalc.core.analyses import Analysis


def _parse(raw: Mapping[str, Any], schema: Schema, *, group_required: bool) -> dict[str, Any]:
    time = numeric_column(raw, schema, "time")
    event = binary_column(raw, schema, "event")
    out: dict[str, Any] = {"time": time, "event": event}
    if "group" in raw or group_required:
        group = category_column(raw, schema, "group")
        if group_required and len(schema[group].levels) < 2:
            raise option_error(f"needs a category column with at least two levels; {group!r} "
                               f"has {len(schema[group].levels)}", "group")
        out["group"] = group
    column = schema[time]
    assert column.min is not None and column.max is not None
    if "grid" in raw:
        SURVIVAL_POINTS.check_length(raw["grid"], "grid")  # before any list is built from it
        grid = number_list(raw, "grid", increasing=True)
        if grid[-1] < column.max:
            raise option_error(f"must reach the max of {time!r} ({column.max:g}) so that "
                               f"every time rounds up to a grid point; its last point is "
                               f"{grid[-1]:g}", "grid")
        out["grid"] = list(raw["grid"])
    elif column.type == "float":
        raise option_error(f"a float time column ({time!r}) needs a grid of time points "
                           "(each time is rounded up to the next one)", "grid")
    else:
        points = int(column.max) - int(column.min) + 1
        SURVIVAL_POINTS.check(points, "time", hint=f"the range of {time!r} is one point per "
                              "integer: set a coarser grid = [...] of time points")
    COUNT_CELLS.check(_cells(out, schema), hint="counts are per group and time point")
    return out


def _cells(options: Mapping[str, Any], schema: Schema) -> int:
    """Groups x time points, computed without listing the time points."""
    group, grid = options.get("group"), options.get("grid")
    column = schema[options["time"]]
    assert column.min is not None and column.max is not None
    points = len(grid) if grid is not None else int(column.max) - int(column.min) + 1
    return (len(schema[group].levels) if group else 1) * points


def _times(analysis: Analysis, schema: Schema) -> list[Any]:
    grid = analysis.options.get("grid")
    if grid is not None:
        return list(grid)
    column = schema[analysis.options["time"]]
    assert column.min is not None and column.max is not None
    return list(range(int(column.min), int(column.max) + 1))


def _groups(analysis: Analysis, schema: Schema) -> tuple[str, ...] | None:
    group = analysis.options.get("group")
    return schema[group].levels if group else None


class _Survival(Kind):
    """Shared plan and local input of the survival kinds."""

    def columns(self, options: Mapping[str, Any]) -> tuple[str, ...]:
        group = options.get("group")
        return (options["time"], options["event"], *((group,) if group else ()))

    def counts(self, options: Mapping[str, Any], schema: Schema) -> int:
        return _cells(options, schema)

    def _shape(self, analysis: Analysis, schema: Schema) -> tuple[int, int]:
        groups = _groups(analysis, schema)
        return (len(groups) if groups else 1), len(_times(analysis, schema))

    def _levels(self, analysis: Analysis, schema: Schema) -> Levels:
        group = analysis.options.get("group")
        return Levels.of(schema, [group] if group else [])

    def _cells(self, analysis: Analysis, schema: Schema) -> int:
        g, t = self._shape(analysis, schema)
        return 2 * g * t

    def plan(self, analysis: Analysis, schema: Schema, engine: str,
             study: StudyOptions) -> Plan:
        """Events and removals per group and time point, then the cohort counts: per group
        (and its complement), or the whole cohort's without a group."""
        levels = self._levels(analysis, schema)
        return SumPlan.counts(self._cells(analysis, schema) + (levels.width or 1))

    def cohort_slots(self, analysis: Analysis, schema: Schema, plan: Plan) -> tuple[int, ...]:
        assert isinstance(plan, SumPlan)
        return tuple(range(self._cells(analysis, schema), plan.width))

    def cell_slots(self, analysis: Analysis, schema: Schema, plan: Plan) -> tuple[int, ...]:
        return tuple(range(self._cells(analysis, schema)))

    def withheld_note(self, analysis: Analysis, study: StudyOptions) -> str:
        return (f"withheld: a group holds fewer than min_cohort ({study.min_cohort}) patients, "
                f"or a time point has events or removals below min_cell_count "
                f"({study.min_cell_count}); coarsen the time points with grid")

    def local(self, analysis: Analysis, schema: Schema, table: Table, mask: np.ndarray,
              study: StudyOptions) -> tuple[int, ...]:
        """Per group (in level order), events d then removals r at each time point."""
        g, t = self._shape(analysis, schema)
        keep = present(table, self.columns(analysis.options), mask)
        time = table.column(analysis.options["time"]).values[keep]
        grid = analysis.options.get("grid")
        if grid is None:
            index = time.astype(np.int64) - np.int64(int(_times(analysis, schema)[0]))
        else:
            index = np.searchsorted(np.asarray(grid, dtype=np.float64),
                                    time.astype(np.float64), side="left")
        group = analysis.options.get("group")
        codes = table.column(group).values[keep] if group else np.zeros(len(index), np.int64)
        cell = codes * t + index
        events = binary_values(table, schema, analysis.options["event"], keep) == 1
        d = np.bincount(cell[events], minlength=g * t).reshape(g, t)
        r = np.bincount(cell, minlength=g * t).reshape(g, t)
        counts = self._levels(analysis, schema).local(table, keep) if group else \
            (int(np.count_nonzero(keep)),)
        return (*np.concatenate([d, r], axis=1).ravel().tolist(), *counts)

    def _counts(self, analysis: Analysis, schema: Schema,
                released: Any) -> tuple[np.ndarray, np.ndarray]:
        """Pooled events and numbers at risk, shape (groups, time points)."""
        g, t = self._shape(analysis, schema)
        values = np.array([int(round(v)) for v in released[:2 * g * t]],
                          dtype=np.int64).reshape(g, 2 * t)
        d, r = values[:, :t], values[:, t:]
        at_risk = np.cumsum(r[:, ::-1], axis=1)[:, ::-1]
        return d, at_risk


def _km_curve(times: list[Any], d: np.ndarray, at_risk: np.ndarray) -> list[dict[str, Any]]:
    """Kaplan-Meier estimate and lifelines' default 95% interval (exponential Greenwood:
    log(-log) transform) at every time with events."""
    dt = d.astype(np.float64)
    nt = at_risk.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(nt > 0, 1.0 - dt / np.where(nt > 0, nt, 1.0), 1.0)
        survival = np.cumprod(factor)
        term = np.where((d > 0) & (d < at_risk), dt / (nt * (nt - dt)), 0.0)
        var = np.cumsum(term)
        z = norm_ppf(0.975)
        v = np.log(survival)
        lower = np.exp(-np.exp(np.log(-v) - z * np.sqrt(var) / v))
        upper = np.exp(-np.exp(np.log(-v) + z * np.sqrt(var) / v))
    lower = np.where(np.isnan(lower), 1.0, lower)
    upper = np.where(np.isnan(upper), 1.0, upper)
    return [{"time": times[i], "at_risk": int(at_risk[i]), "events": int(d[i]),
             "survival": float(survival[i]), "ci_lower": float(lower[i]),
             "ci_upper": float(upper[i])}
            for i in np.flatnonzero(d > 0)]


class KaplanMeier(_Survival):
    """Kaplan-Meier survival curve, overall or per level of ``group``.

    At every time point with events (in that group): the number at risk, the events, the
    survival estimate and its 95% interval as lifelines' ``KaplanMeierFitter`` gives it by
    default (exponential Greenwood, i.e. the log(-log) transform). value: ``{"groups":
    {level or "all": [{"time", "at_risk", "events", "survival", "ci_lower", "ci_upper"}]}}``
    (a level without events has an empty list). When any group fails the gates the whole
    analysis is withheld: releasing the other groups would give the failing group's size as
    the cohort's count minus theirs.
    """

    name = "kaplan_meier"
    reveals: ClassVar[str] = (
        "per group, the pooled events and removals (events plus censorings) at every time "
        "point: the curve's own data, plus the censorings between event times. Released only "
        "if every count is 0 or at least min_cell_count and every group (with more than two "
        "groups, its complement too) holds min_cohort patients; otherwise no group's curve is.")
    keys: ClassVar[Mapping[str, str]] = {
        "time": "numeric time column",
        "event": "0/1 event column (int within [0, 1], or a two-level category: second = event)",
        "group": "optional category column: one curve per level",
        "grid": "time points, strictly increasing (times are rounded up to the next one; "
                "required for a float time column)",
    }
    required: ClassVar[frozenset[str]] = frozenset({"time", "event"})

    def parse(self, raw: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
        return _parse(raw, schema, group_required=False)

    def finish(self, analysis: Analysis, schema: Schema, released: Any,
               study: StudyOptions) -> tuple[Any, int]:
        times = _times(analysis, schema)
        d, at_risk = self._counts(analysis, schema, released)
        labels = _groups(analysis, schema) or ("all",)
        curves = {label: _km_curve(times, d[i], at_risk[i]) for i, label in enumerate(labels)}
        return {"groups": curves}, int(at_risk[:, 0].sum())


class LogRank(_Survival):
    """Log-rank test of equal survival across the levels of ``group``, matching lifelines'
    ``logrank_test`` (two groups) and ``multivariate_logrank_test`` (more).

    Levels without rows are left out (df = levels with rows - 1). value: ``{"statistic" (the
    chi-square), "df", "p_value", "observed": {level: events}, "expected": {level: expected
    events}}``; None when fewer than two levels have rows.
    """

    name = "logrank"
    reveals: ClassVar[str] = (
        "per group, the pooled events and removals (events plus censorings) at every time "
        "point: the Kaplan-Meier curves' own data, plus the censorings between event times. "
        "Released only if every group's curve could be (see kaplan_meier).")
    keys: ClassVar[Mapping[str, str]] = {**KaplanMeier.keys,
                                         "group": "category column: the groups to compare"}
    required: ClassVar[frozenset[str]] = frozenset({"time", "event", "group"})

    def parse(self, raw: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
        return _parse(raw, schema, group_required=True)

    def finish(self, analysis: Analysis, schema: Schema, released: Any,
               study: StudyOptions) -> tuple[Any, int]:
        d_all, risk_all = self._counts(analysis, schema, released)
        n = int(risk_all[:, 0].sum())
        labels = _groups(analysis, schema)
        assert labels is not None
        used = [i for i in range(len(labels)) if risk_all[i, 0] > 0]
        if len(used) < 2:
            return None, n
        d = d_all[used].astype(np.float64)
        at_risk = risk_all[used].astype(np.float64)
        d_t = d.sum(axis=0)
        n_t = at_risk.sum(axis=0)
        event_times = d_t > 0
        d, at_risk, d_t, n_t = d[:, event_times], at_risk[:, event_times], d_t[event_times], \
            n_t[event_times]
        observed = d.sum(axis=1)
        expected = (at_risk * (d_t / n_t)).sum(axis=1)
        factor = np.where(n_t > 1, (n_t - d_t) / np.where(n_t > 1, n_t - 1, 1.0), 1.0) \
            * d_t / n_t**2
        weighted = at_risk * np.sqrt(factor)  # (groups, times)
        v = -(weighted @ weighted.T)
        totals = at_risk.sum(axis=0) * np.sqrt(factor)
        v[np.diag_indices_from(v)] += (weighted * totals).sum(axis=1)
        z = (observed - expected)[:-1]
        chi2 = float(z @ np.linalg.pinv(v[:-1, :-1]) @ z)
        df = len(used) - 1
        value = {
            "statistic": chi2, "df": df, "p_value": chi2_sf(chi2, df),
            "observed": {labels[i]: int(o) for i, o in zip(used, observed, strict=True)},
            "expected": {labels[i]: float(e) for i, e in zip(used, expected, strict=True)},
        }
        return value, n


SURVIVAL = (KaplanMeier(), LogRank())
