"""Naive MPyC baseline: every record secret-shared, then the obvious secure formulas.

A bench-only step type, :class:`NaiveStep`, runs in the MPC engine's own workers (registered
with :func:`securecalc.engines.mpc.steps.register`; a worker imports this module when it
unpickles the step). Each party inputs all of its rows; nothing is pre-aggregated:

* ``moments``: ``SecFxp(128, 64)`` records, ``mpyc.statistics.mean`` and ``variance``;
* ``median_select``: ``mpyc.statistics.median`` (MPyC's secure quickselect);
* ``median_sort`` / ``quantiles_sort``: ``runtime.np_sort`` (Batcher's merge-exchange sort,
  vectorised) on a secure array, then the order statistics at the ranks of
  ``numpy.quantile(method="inverted_cdf")``;
* ``linreg``: records shared as a ``SecFxp(128, 64)`` array, ``X'X`` with ``X = [1, x, y]`` by
  one secure matrix product (every sum and inner product of the normal equations), revealed
  and solved in the clear (the same release as a pre-aggregated regression);
* ``crosstab``: each record shared as two one-hot vectors, the cell counts as ``A'B``;
* ``km``: (time, event) shared, ``[time >= t]`` compared securely for every record and every
  grid time ``t`` (vectorised), at-risk and event counts revealed.

Secure arrays make the baseline faster than list code (a conservative comparison); their
messages are unpickled by MPyC, acceptable for a bench run on one machine only.
The released values are returned as integers scaled by ``2**SCALE_BITS``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from securecalc.engines.mpc.steps import register

SCALE_BITS = 24
TASKS = ("moments", "median_select", "median_sort", "quantiles_sort", "linreg", "crosstab", "km")


@dataclass(frozen=True, eq=False, repr=False)
class NaiveStep:
    """One naive computation over every party's raw ``records`` (rows x columns, float64).

    ``params``: public parameters of the task (probabilities, levels, grid size). Every party
    must hold the same number of rows (MPyC's list input needs equal lengths).
    """

    name: str
    task: str
    records: np.ndarray
    params: tuple[Any, ...] = ()
    kind: ClassVar[str] = "bench-naive"

    def __repr__(self) -> str:
        return f"NaiveStep({self.name!r}, {self.task!r}, shape={self.records.shape})"

    def check_inputs(self) -> None:
        if self.task not in TASKS or self.records.ndim != 2:
            raise ValueError(f"bad naive step {self!r}")

    def public_spec(self) -> tuple[object, ...]:
        return (self.kind, self.name, self.task, self.records.shape, self.params)


def _pooled(shared: Sequence[Sequence[Any]]) -> list[Any]:
    return [a for part in shared for a in part]


def _scaled(values: Sequence[float]) -> list[int]:
    return [round(float(v) * 2**SCALE_BITS) for v in values]


def _ranks(n: int, probs: Sequence[float]) -> list[int]:
    return [max(1, math.ceil(p * n)) - 1 for p in probs]


def _median_of_sorted(y: Sequence[Any]) -> Any:
    n = len(y)
    return y[(n - 1) // 2] if n % 2 else (y[n // 2 - 1] + y[n // 2]) / 2


def _array(rt: Any, sectype: Any, values: np.ndarray) -> Any:
    """Every party's rows as one secure array (parties stacked along axis 0)."""
    shared = rt.input(sectype.array(values))
    return rt.np_vstack(shared) if values.ndim == 2 else rt.np_hstack(shared)


@register(NaiveStep)
async def _run_naive(rt: Any, step: NaiveStep) -> Sequence[int]:
    from mpyc import statistics

    rec, task = step.records, step.task
    if task == "moments":
        secfxp = rt.SecFxp(128, 64)
        x = _pooled(rt.input([secfxp(float(v)) for v in rec[:, 0]]))
        mean = statistics.mean(x)
        return _scaled(await rt.output([mean, statistics.variance(x, mean)]))
    if task == "median_select":
        secfxp = rt.SecFxp(32, 16)
        x = _pooled(rt.input([secfxp(float(v)) for v in rec[:, 0]]))
        return _scaled([await rt.output(statistics.median(x))])
    if task in ("median_sort", "quantiles_sort"):
        y = rt.np_sort(_array(rt, rt.SecFxp(32, 16), rec[:, 0]))
        n = y.shape[0]
        if task == "median_sort":
            return _scaled([await rt.output(_median_of_sorted([y[i] for i in range(n)]))])
        return _scaled(await rt.output([y[k] for k in _ranks(n, step.params)]))
    if task == "linreg":
        x = _array(rt, rt.SecFxp(128, 64), np.column_stack([np.ones(len(rec)), rec]))
        gram = x.T @ x  # every sum and inner product of X'X and X'y (y is the last column)
        k = gram.shape[0]
        return _scaled(await rt.output([gram[i, j] for i in range(k) for j in range(i, k)]))
    if task == "crosstab":
        levels_a, levels_b = step.params
        a, b = rec[:, 0].astype(int), rec[:, 1].astype(int)
        onehot = np.column_stack([a == r for r in range(levels_a)] +
                                 [b == c for c in range(levels_b)]).astype(np.int64)
        x = _array(rt, rt.SecInt(32), onehot)
        cells = x[:, :levels_a].T @ x[:, levels_a:]
        return [int(v) for v in await rt.output([cells[r, c] for r in range(levels_a)
                                                for c in range(levels_b)])]
    if task == "km":
        (grid,) = step.params
        x = _array(rt, rt.SecInt(16), rec[:, :2].astype(np.int64))
        time, event = x[:, 0], x[:, 1]
        ge = time[:, None] >= np.arange(1, grid + 2)[None, :]  # n x (grid + 1) comparisons
        at_risk = ge[:, :-1].sum(axis=0)
        events = ((ge[:, :-1] - ge[:, 1:]) * event[:, None]).sum(axis=0)
        return [int(v) for v in await rt.output([at_risk[g] for g in range(grid)] +
                                                [events[g] for g in range(grid)])]
    raise ValueError(f"unknown naive task {task!r}")


__all__ = ["SCALE_BITS", "TASKS", "NaiveStep"]
