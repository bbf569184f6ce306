"""Iterative steps with real MPyC workers: rounds of sums driven by the released totals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from securecalc.core.encoding import mpc_decode, mpc_encode
from securecalc.core.plans import MAX_ROWS_PER_SITE, SumPlan
from securecalc.engines.mpc import IterativeStep, MpcJob, replay, run_local, run_local_outcomes
from securecalc.errors import DataError, PartyError

ROWS = float(MAX_ROWS_PER_SITE)
State = tuple[float | None, float | None]  # (theta, last Newton step)


@dataclass(frozen=True)
class TanhLocation:
    """Newton's method for the root of ``sum(tanh(x - theta)) = 0`` over the pooled rows.

    Round 1 sums ``(n, sum x)`` to start from the mean; every later round sums
    ``(sum tanh(x - theta), sum sech(x - theta)**2)``. Stops when a step is below ``tol``.
    ``|x| <= amax`` at every row.
    """

    amax: float
    tol: float = 1e-10
    max_rounds: int = 30

    def initial_state(self) -> State:
        return (None, None)

    def round_plan(self, state: State) -> SumPlan:
        if state[0] is None:
            return SumPlan((True, False), (ROWS, ROWS * self.amax), (1.0, self.amax))
        return SumPlan((False, False), (ROWS, ROWS), (1.0, 1.0))

    def local(self, state: State, data: np.ndarray) -> tuple[float | int, ...]:
        theta = state[0]
        if theta is None:
            return (len(data), float(np.sum(data)))
        d = data - theta
        return (float(np.sum(np.tanh(d))), float(np.sum(1.0 / np.cosh(d) ** 2)))

    def advance(self, state: State, totals: Sequence[Fraction]) -> State:
        theta = state[0]
        if theta is None:
            return (float(totals[1] / totals[0]), None)
        step = float(totals[0] / totals[1])
        return (theta + step, step)

    def done(self, state: State) -> bool:
        return state[1] is not None and abs(state[1]) < self.tol


@dataclass(frozen=True)
class Echo:
    """Round i: every party inputs ``data[i]`` (a count <= 10); never done by itself."""

    max_rounds: int = 3

    def initial_state(self) -> int:
        return 0

    def round_plan(self, state: int) -> SumPlan:
        return SumPlan((True,), (10,), (1,))

    def local(self, state: int, data: Sequence[int]) -> tuple[int]:
        return (data[state],)

    def advance(self, state: int, totals: Sequence[Fraction]) -> int:
        return state + 1

    def done(self, state: int) -> bool:
        return False


def simulate(program: Any, datas: Sequence[Any]) -> tuple[int, ...]:
    """The totals an IterativeStep releases, computed in the clear from every party's data."""
    state, out, rounds = program.initial_state(), [0], 0
    while rounds < program.max_rounds and not program.done(state):
        plan = program.round_plan(state)
        parts = [mpc_encode(plan, program.local(state, d)) for d in datas]
        totals = [sum(col) for col in zip(*parts, strict=True)]
        out += [len(totals), *totals]
        state = program.advance(state, mpc_decode(plan, totals))
        rounds += 1
    out[0] = rounds
    return tuple(out)


def newton_in_the_clear(x: np.ndarray, tol: float) -> float:
    theta = float(np.mean(x))
    for _ in range(100):
        d = x - theta
        step = float(np.sum(np.tanh(d)) / np.sum(1.0 / np.cosh(d) ** 2))
        theta += step
        if abs(step) < tol:
            return theta
    raise AssertionError("no convergence")


@pytest.mark.timeout(60)
def test_newton_converges_identically_at_every_party() -> None:
    rng = np.random.default_rng(11)
    datas = [np.concatenate([rng.normal(3.0, 1.0, 400), rng.uniform(20, 50, 40)]),  # outliers
             rng.normal(2.5, 2.0, 700), rng.normal(3.5, 0.5, 50)]
    amax = float(max(np.max(np.abs(d)) for d in datas))
    newton, capped, idle = TanhLocation(amax), TanhLocation(amax, tol=0.0, max_rounds=3), \
        TanhLocation(amax, max_rounds=0)
    names = ("hospital-a", "hospital-b", "hospital-c")
    jobs = [MpcJob("iterative", p, names,
                   (IterativeStep("newton", newton, datas[p]),
                    IterativeStep("capped", capped, datas[p]),
                    IterativeStep("idle", idle, datas[p]))) for p in range(3)]
    results = run_local(jobs, timeout=50)

    want = simulate(newton, datas)
    rounds = want[0]
    assert 3 <= rounds <= 10
    for r in results:  # identical released integers everywhere, equal to the clear run
        assert r.totals("newton") == want
        assert all(type(v) is int for v in r.totals("newton"))
        assert r.totals("capped") == simulate(capped, datas) and r.totals("capped")[0] == 3
        assert r.totals("idle") == (0,)
    theta, step = replay(newton, results[0].totals("newton"))
    assert step is not None and abs(step) < newton.tol
    pooled = np.concatenate(datas)
    assert theta == pytest.approx(newton_in_the_clear(pooled, 1e-12), abs=1e-9)
    assert abs(theta - float(np.mean(pooled))) > 0.5  # robust: far from the outlier-led mean
    steps = {s.name: s for s in results[0].steps}
    assert steps["newton"].rounds == 2 * rounds  # one input and one output per round
    assert steps["capped"].rounds == 6 and steps["idle"].rounds == 0
    s = steps["newton"]
    print(f"\niterative Newton ({rounds} rounds of sums): {s.rounds} rounds, {s.seconds:.3f} s, "
          f"{s.bytes_sent} bytes sent by party 0")


@pytest.mark.timeout(60)
def test_input_outside_bound_in_a_later_round_fails_at_that_party() -> None:
    datas = [(1, 2, 3), (4, 12, 0), (0, 0, 0)]  # beta exceeds mpc_bound (11) in round 2
    jobs = [MpcJob("iterative-bad", p, ("alpha", "beta", "gamma"),
                   (IterativeStep("echo", Echo(), datas[p]),), peer_timeout=30.0)
            for p in range(3)]
    outcomes = run_local_outcomes(jobs, timeout=50)
    bad = outcomes[1]
    assert isinstance(bad.error, DataError) and "outside the declared bound" in str(bad.error)
    assert bad.frames_sent > 0  # round 1 was shared; round 2's value never left
    for o in (outcomes[0], outcomes[2]):
        assert isinstance(o.error, PartyError) and o.error.party == "beta", o.error
        assert o.seconds < 15.0  # told at once, not by the peer timeout
