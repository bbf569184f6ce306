"""Measuring the naive MPyC baseline at small sizes and extrapolating it to the matrix's sizes.

Every task of :mod:`securecalc_bench.naive_mpc` runs at a few sizes (rows per party) through
:func:`securecalc.engines.mpc.local.run_local`: real workers, one per party, exchanging frames
through the in-memory relay. A size's tasks share one job (one worker start-up); each step's
time is the slowest party's. Costs are then fitted per task (:mod:`extrapolate`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from securecalc_bench.datasets import LEVELS_A, LEVELS_B, MAX_TIME, PREDICTORS, generate_site
from securecalc_bench.extrapolate import fit
from securecalc_bench.matrix import NaiveSizes
from securecalc_bench.naive_mpc import NaiveStep

PROBS = (0.1, 0.25, 0.5, 0.75, 0.9)
MODEL = {"moments": "linear", "median_select": "quadratic", "median_sort": "sort",
         "quantiles_sort": "sort", "linreg": "linear", "crosstab": "linear", "km": "linear"}
#: bench analysis -> naive tasks (a tuple inside means: the cheapest of these)
ANALYSIS_TASKS: dict[str, tuple[str | tuple[str, ...], ...]] = {
    "moments": ("moments",), "quantiles": ("quantiles_sort",), "linreg": ("linreg",),
    "kaplan_meier": ("km",), "crosstab": ("crosstab",),
    "mvm": ("moments", ("median_select", "median_sort")),
}


@dataclass(frozen=True)
class Point:
    task: str
    parties: int
    rows_per_party: int
    seconds: float
    bytes_sent: int
    rounds: int
    grid: int = 0

    @property
    def size(self) -> float:
        """The model's N: total rows (times grid + 1 for Kaplan-Meier comparisons)."""
        n = self.parties * self.rows_per_party
        return n * (self.grid + 1) if self.task == "km" else n


def _records(task: str, site: dict[str, np.ndarray], rows: int, grid: int) -> np.ndarray:
    if task in ("moments", "median_select", "median_sort", "quantiles_sort"):
        return site["value"][:rows, None]
    if task == "linreg":
        return np.column_stack([site[c][:rows] for c in (*PREDICTORS, "y")])
    if task == "crosstab":
        a = np.searchsorted(LEVELS_A, site["cat_a"][:rows])
        b = np.searchsorted(LEVELS_B, site["cat_b"][:rows])
        return np.column_stack([a, b]).astype(np.float64)
    time_ = np.ceil(site["time"][:rows] * grid / MAX_TIME)  # times on a grid of ``grid`` steps
    return np.column_stack([time_, site["event"][:rows]]).astype(np.float64)


def _params(task: str, grid: int) -> tuple[Any, ...]:
    return {"quantiles_sort": PROBS, "crosstab": (len(LEVELS_A), len(LEVELS_B)),
            "km": (grid,)}.get(task, ())


def measure(sizes: NaiveSizes, *, parties: int = 3, seed: int = 0,
            progress: Callable[[str], None] = lambda _: None) -> list[Point]:
    """Run every task at every size, ``sizes.repeats`` times; one job per size index and
    repetition. The fastest repetition of each (task, size) is kept: other processes on a
    shared machine only ever add time."""
    from securecalc.engines.mpc import MpcJob, run_local

    biggest = max(max(v) for v in sizes.sizes.values())
    sites = [generate_site(p, biggest, np.random.default_rng([seed, 1000 + p]))
             for p in range(parties)]
    names = tuple(f"naive-{p}" for p in range(parties))
    best: dict[tuple[str, int], Point] = {}
    for repeat in range(sizes.repeats):
        for index in range(max(len(v) for v in sizes.sizes.values())):
            tasks = [(t, v[index]) for t, v in sizes.sizes.items() if index < len(v)]
            jobs = [MpcJob(f"naive-{repeat}-{index}", p, names,
                           tuple(NaiveStep(t, t, _records(t, sites[p], n, sizes.km_grid),
                                           _params(t, sizes.km_grid)) for t, n in tasks),
                           peer_timeout=900, job_timeout=3600, setup_timeout=120)
                    for p in range(parties)]
            started = time.perf_counter()
            results = run_local(jobs, timeout=3600)
            for k, (task, rows) in enumerate(tasks):
                steps = [r.steps[k] for r in results]
                point = Point(task, parties, rows, max(s.seconds for s in steps),
                              sum(s.bytes_sent for s in steps), max(s.rounds for s in steps),
                              sizes.km_grid if task == "km" else 0)
                old = best.get((task, rows))
                if old is None or point.seconds < old.seconds:
                    best[(task, rows)] = point
            progress(f"naive MPyC: {', '.join(f'{t}@{n}' for t, n in tasks)} "
                     f"({time.perf_counter() - started:.1f} s)")
    order = list(sizes.sizes)
    return sorted(best.values(), key=lambda p: (order.index(p.task), p.rows_per_party))


def _task_estimate(points: Sequence[Point], task: str, rows: int, parties: int,
                   grid: int) -> dict[str, Any] | None:
    mine = [p for p in points if p.task == task and p.parties == parties]
    if not mine:
        return None
    size = parties * rows * ((grid + 1) if task == "km" else 1)
    exact = [p for p in mine if p.size == size]
    if exact:
        return {"task": task, "seconds": exact[0].seconds, "extrapolated": False,
                "rounds": exact[0].rounds, "bytes_sent": exact[0].bytes_sent}
    f = fit(MODEL[task], [p.size for p in mine], [p.seconds for p in mine])
    out = {"task": task, "seconds": f.predict(size), "extrapolated": True,
           "model": f.formula, "coefficients": list(f.coefficients),
           "from_rows_per_party": [p.rows_per_party for p in mine]}
    if f.coefficients[-1] <= 0:  # noise hid the growth: scale the largest point instead
        top = max(mine, key=lambda p: p.size)
        out.update(seconds=top.seconds * size / top.size, model="proportional to N",
                   coefficients=[top.seconds / top.size])
    return out


def estimate(points: Sequence[Point], analysis: str, rows: int, parties: int = 3,
             grid: int = MAX_TIME) -> dict[str, Any] | None:
    """Naive seconds for a bench analysis at ``rows`` per party (summed over its tasks)."""
    tasks = ANALYSIS_TASKS.get(analysis)
    if tasks is None:
        return None
    parts = []
    for entry in tasks:
        options = [e for e in ((entry,) if isinstance(entry, str) else entry)]
        found = [x for x in (_task_estimate(points, t, rows, parties, grid) for t in options)
                 if x is not None]
        if not found:
            return None
        parts.append(min(found, key=lambda x: x["seconds"]))
    return {"analysis": analysis, "rows_per_party": rows, "parties": parties,
            "seconds": sum(p["seconds"] for p in parts),
            "extrapolated": any(p["extrapolated"] for p in parts), "parts": parts}


def gate_rounds(parties: int = 3, threshold: int = 10) -> dict[str, int]:
    """Rounds of the engine's plain secure sum and of the same sum behind the cohort gate
    (the zero test a study's ``min_cohort`` adds on exact counts), for a mean's 2 slots."""
    from securecalc.engines.mpc import MpcJob, SumStep, run_local
    from securecalc.engines.mpc.step_specs import GatedSumStep

    names = tuple(f"rounds-{p}" for p in range(parties))
    jobs = [MpcJob("rounds", p, names, (SumStep("sum", (1000, 5), 2**40),
                                        GatedSumStep("gated", (1000, 5), 2**40, (0,),
                                                     threshold, gate_floor=0)))
            for p in range(parties)]
    steps = run_local(jobs, timeout=120)[0].steps
    return {"sum": steps[0].rounds, "gated_sum": steps[1].rounds}


def points_json(points: Sequence[Point]) -> list[dict[str, Any]]:
    return [asdict(p) for p in points]


__all__ = ["ANALYSIS_TASKS", "Point", "estimate", "gate_rounds", "measure", "points_json"]
