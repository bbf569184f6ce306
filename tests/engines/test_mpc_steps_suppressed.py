"""Suppressed sums with real MPyC workers: totals below the threshold are never released.

Small thresholds run the zero test (``steps_gate``), large ones the secure comparison."""

from __future__ import annotations

import random

import pytest

from securecalc.core.plans import MAX_ROWS_PER_SITE
from securecalc.engines.mpc import (
    JobResult,
    MpcJob,
    SumStep,
    SuppressedSumStep,
    run_local,
    sum_bit_length,
)
from securecalc.engines.mpc.steps import suppressed_sum_plan
from securecalc.engines.mpc.steps_compare import comparison_rounds
from securecalc.errors import DataError

BOUND = MAX_ROWS_PER_SITE + 1  # what mpc_bound gives for a counts plan


def party_values(m: int, threshold: int, seed: int) -> dict[str, list[tuple[int, ...]]]:
    """Per step name, one vector per party, with totals below, at and above the threshold."""
    rnd = random.Random(seed)
    t = threshold
    # slots: 0, t - 1, t, t + 1, every party at or near the bound, t split over the parties
    mixed = [_split(total, m, rnd) for total in (0, t - 1, t, t + 1)]
    mixed.append([BOUND - rnd.randint(0, 3) for _ in range(m)])
    mixed.append(_split(t, m, rnd))
    wide = [_split(rnd.choice((rnd.randint(0, t - 1), rnd.randint(t, 4 * t))), m, rnd)
            for _ in range(25)]
    return {
        "mixed": [tuple(col[p] for col in mixed) for p in range(m)],
        "wide": [tuple(col[p] for col in wide) for p in range(m)],
        "single-small": [(1,)] + [(0,)] * (m - 1),
        "single-at": [(t,)] + [(0,)] * (m - 1),
        "empty": [()] * m,
    }


def _split(total: int, m: int, rnd: random.Random) -> list[int]:
    """``total`` as m counts in [0, BOUND]."""
    cuts = sorted(rnd.randint(0, total) for _ in range(m - 1))
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]
    assert all(0 <= v <= BOUND for v in parts)
    return parts


def run(m: int, threshold: int, seed: int) -> tuple[list[JobResult], dict[str, list[int]]]:
    values = party_values(m, threshold, seed)
    names = tuple(f"hospital-{chr(97 + p)}" for p in range(m))
    jobs = []
    for p in range(m):
        steps: list[object] = [SuppressedSumStep(k, v[p], BOUND, threshold)
                               for k, v in values.items()]
        steps.append(SumStep("plain", values["wide"][p], BOUND))
        jobs.append(MpcJob(f"suppressed-{m}", p, names, tuple(steps)))  # type: ignore[arg-type]
    totals = {k: [sum(col) for col in zip(*v, strict=True)] for k, v in values.items()}
    return run_local(jobs, timeout=50), totals


def check(results: list[JobResult], totals: dict[str, list[int]], threshold: int) -> bool:
    """Check the released values and rounds; whether the zero test ran."""
    by_zero, expected = suppressed_sum_plan(SuppressedSumStep("s", (), BOUND, threshold),
                                            len(results))
    # comparison: input (overlapping the comparison's randomness), comparison, product, output;
    # the session may count a peer's early input as a dependency of our randomness: +1
    slack = 0 if by_zero else 1
    for name, tot in totals.items():
        bits = [int(t >= threshold) for t in tot]
        masked = [t if b else 0 for t, b in zip(tot, bits, strict=True)]
        for r in results:
            got = r.totals(name)
            assert got == (*bits, *masked), name
            assert all(type(v) is int for v in got)
    for r in results:  # every width costs the same rounds: one batch per round
        rounds = {s.name: s.rounds for s in r.steps if s.name != "plain"}
        assert rounds.pop("empty") == 0
        assert all(expected <= v <= expected + slack for v in rounds.values()), (expected, rounds)
        assert r.totals("plain") == tuple(totals["wide"])
    return by_zero


@pytest.mark.timeout(60)
def test_three_parties_withhold_small_totals() -> None:
    results, totals = run(3, threshold=11, seed=1)
    assert totals["mixed"][:4] == [0, 10, 11, 12]
    assert check(results, totals, 11)  # zero test: 12 factors, depth 4
    assert {s.rounds for s in results[0].steps if s.name != "empty"} == {5, 2}
    mixed = results[0].totals("mixed")
    assert mixed[:6] == (0, 0, 1, 1, 1, 1) and mixed[6:8] == (0, 0)  # 10 stays secret
    assert mixed[10] == totals["mixed"][4] > 2 * MAX_ROWS_PER_SITE  # large totals fit
    wide = next(s for s in results[0].steps if s.name == "wide")
    print(f"\nsuppressed sum of 25 slots, 3 parties: {wide.rounds} rounds, "
          f"{wide.seconds:.3f} s, {wide.bytes_sent} bytes sent by party 0")


@pytest.mark.timeout(60)
def test_five_parties_withhold_small_totals() -> None:
    results, totals = run(5, threshold=5, seed=2)
    assert check(results, totals, 5)
    assert results[0].steps[0].rounds == 4  # input, 2 levels of products, opening
    assert results[0].totals("single-small") == (0, 0)
    assert results[0].totals("single-at") == (1, 5)


@pytest.mark.timeout(60)
def test_large_threshold_is_compared() -> None:
    """Beyond about 2**10 the zero test's depth exceeds the comparison's rounds."""
    results, totals = run(3, threshold=3000, seed=4)
    assert not check(results, totals, 3000)
    length = sum_bit_length(BOUND, 3)
    assert suppressed_sum_plan(SuppressedSumStep("s", (), BOUND, 3000), 3) == (
        False, comparison_rounds(length) + 2) == (False, 11)
    assert suppressed_sum_plan(SuppressedSumStep("s", (), BOUND, 1022), 3) == (True, 11)
    assert suppressed_sum_plan(SuppressedSumStep("s", (), BOUND, 1023), 3) == (False, 11)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("floor", [-3, -(2**20)])
def test_noisy_counts_below_zero_are_withheld(floor: int) -> None:
    """Counts with noise shares may be negative: a pooled total below 0 is small too, by the
    zero test over ``[m * floor, threshold)`` or, for a wide floor, by the comparison."""
    m, threshold = 3, 5
    parts = [(-3, 2, 0, floor, 4), (-2, 2, 5, 0, 4), (0, 0, 0, 7, -1)]
    totals = [sum(col) for col in zip(*parts, strict=True)]  # -5, 4, 5, floor + 7, 7
    names = tuple(f"hospital-{chr(97 + p)}" for p in range(m))
    step = SuppressedSumStep("noisy", (), BOUND, threshold, floor=floor)
    by_zero, _ = suppressed_sum_plan(step, m)
    assert by_zero == (floor == -3)
    jobs = [MpcJob("noisy", p, names, (SuppressedSumStep("noisy", parts[p], BOUND, threshold,
                                                         floor=floor),)) for p in range(m)]
    bits = [int(t >= threshold) for t in totals]
    for r in run_local(jobs, timeout=50):
        assert r.totals("noisy") == (*bits, *(t if b else 0 for t, b in zip(totals, bits,
                                                                             strict=True)))
    with pytest.raises(DataError, match="outside the declared bound"):
        SuppressedSumStep("noisy", (floor - 1,), BOUND, threshold, floor=floor).check_inputs()
