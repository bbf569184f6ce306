"""Secure sums with real MPyC workers in real processes, routed by the in-memory relay."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest

from securecalc.engines.mpc import JobResult, MpcJob, SumStep, run_local

BIG = 2**100


def party_steps(m: int, seed: int) -> list[list[SumStep]]:
    """Per party: several steps covering random values, both bounds, zeros and tiny bounds."""
    rnd = random.Random(seed)
    parties = []
    for p in range(m):
        parties.append([
            SumStep("random", tuple(rnd.randint(-BIG, BIG) for _ in range(10)), BIG),
            SumStep("at-bounds", (BIG, -BIG, BIG * (-1) ** p, 0), BIG),
            SumStep("zeros", (0,) * 5, 7),
            SumStep("bits", tuple(rnd.choice((-1, 0, 1)) for _ in range(6)), 1),
            SumStep("int64", np.array([2**62, -(2**62), p], dtype=np.int64), 2**62),  # type: ignore[arg-type]
            SumStep("single", (rnd.randint(-5, 5),), 5),
            SumStep("empty", (), 3),
        ])
    return parties


def make_jobs(
    job_id: str, m: int, seed: int, **kw: float
) -> tuple[list[MpcJob], list[list[SumStep]]]:
    names = tuple(f"hospital-{chr(97 + p)}" for p in range(m))
    steps = party_steps(m, seed)
    return [MpcJob(job_id, p, names, tuple(steps[p]), **kw) for p in range(m)], steps


def check_exact(results: list[JobResult], steps: list[list[SumStep]]) -> None:
    for k, step in enumerate(steps[0]):
        expected = tuple(sum(int(s[k].values[i]) for s in steps) for i in range(len(step.values)))
        for r in results:
            assert r.steps[k].name == step.name
            assert r.steps[k].totals == expected, step.name
            assert all(type(v) is int for v in r.steps[k].totals)


def check_costs(results: list[JobResult]) -> None:
    for r in results:
        assert r.setup_rounds == 1 and r.setup_bytes > 0 and r.setup_seconds >= 0
        for s in r.steps:
            if s.totals:
                assert s.rounds == 2, (s.name, s.rounds)  # one input round, one output round
                assert s.bytes_sent > 0 and s.seconds >= 0
            else:
                assert (s.rounds, s.bytes_sent) == (0, 0)
        # handshake, the steps side by side (the longest chain), BYE
        assert r.rounds == 1 + max(s.rounds for s in r.steps) + 1
        assert r.bytes_sent > r.setup_bytes + sum(s.bytes_sent for s in r.steps)


@pytest.mark.timeout(60)
def test_three_parties_sum_exactly_with_costs() -> None:
    jobs, steps = make_jobs("sum-3", 3, seed=3)
    results = run_local(jobs, timeout=50)
    check_exact(results, steps)
    check_costs(results)
    at_bounds = results[0].totals("at-bounds")
    assert at_bounds[0] == 3 * BIG and at_bounds[1] == -3 * BIG  # the extreme totals


@pytest.mark.timeout(60)
def test_five_parties_sum_exactly() -> None:
    jobs, steps = make_jobs("sum-5", 5, seed=5)
    results = run_local(jobs, timeout=50)
    check_exact(results, steps)
    check_costs(results)


@pytest.mark.timeout(60)
def test_two_jobs_run_concurrently_without_interference() -> None:
    outcome: dict[str, object] = {}

    def run(job_id: str, seed: int) -> None:
        jobs, steps = make_jobs(job_id, 3, seed=seed)
        try:
            results = run_local(jobs, timeout=50)
            check_exact(results, steps)
            outcome[job_id] = "ok"
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome[job_id] = exc

    threads = [threading.Thread(target=run, args=(f"conc-{i}", 10 + i)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(55)
    assert outcome == {"conc-0": "ok", "conc-1": "ok"}
