"""Cohort gates with real MPyC workers: the zero test, its rounds, and what a failed gate opens."""

from __future__ import annotations

import contextvars
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import pytest

from securecalc.core.plans import MAX_ROWS_PER_SITE
from securecalc.engines.mpc import GatedSumStep, JobResult, MpcJob, run_local, sum_bit_length
from securecalc.engines.mpc.steps import gated_sum_plan, register, start_step
from securecalc.engines.mpc.steps_compare import comparison_rounds
from securecalc.engines.mpc.steps_gate import Mul, depth, with_totals, zero_test_rounds
from securecalc.errors import ConfigError, DataError

BOUND = 2**48  # fixed-point statistics share one bound with the counts
K = 10  # the default min_cohort


def value(node: Any) -> int:
    return value(node.left) * value(node.right) if isinstance(node, Mul) else node


def nodes(roots: Sequence[Any]) -> set[int]:
    seen: set[int] = set()

    def visit(x: Any) -> None:
        if isinstance(x, Mul) and id(x) not in seen:
            seen.add(id(x))
            visit(x.left)
            visit(x.right)

    for r in roots:
        visit(r)
    return seen


@pytest.mark.parametrize("n_totals", [0, 1, 3])
def test_product_trees_have_the_promised_depth(n_totals: int) -> None:
    primes = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31]
    for size in range(2, 200):
        factors = [primes[i % len(primes)] + i for i in range(size)]
        totals = [-(i + 2) for i in range(n_totals)]
        d = size.bit_length()  # ceil(log2(size + 1))
        w, vs = with_totals(factors, totals, d)
        want = 1
        for f in factors:
            want *= f
        assert value(w) == want and [value(v) for v in vs] == [t * want for t in totals]
        assert all(depth(r) <= d for r in [w, *vs]), size
        # subproducts are shared: no tree is rebuilt per total
        assert len(nodes([w, *vs])) <= size - 1 + n_totals * d


def test_the_cheaper_protocol_is_chosen_from_public_parameters() -> None:
    counts = MAX_ROWS_PER_SITE + 1
    cmp = comparison_rounds(sum_bit_length(counts, 3))
    assert cmp == 9

    def plan(gates: tuple[int, ...], threshold: int, floor: int | None) -> tuple[bool, int]:
        step = GatedSumStep("g", (0,) * 3, counts, gates, threshold, floor)
        return gated_sum_plan(step, 3)

    assert plan((0,), 10, 0) == (True, 5)  # 11 factors: input, 3 levels, opening
    assert plan((0,), 5, 0) == (True, 4)
    assert plan((0, 2), 10, 0) == (True, 6)
    assert plan((0,), 10, -3) == (True, 6)  # 19 factors n - i for n in [-9, 9]
    assert plan((0,), 1022, 0) == (True, 11)
    assert plan((0,), 1023, 0) == (False, cmp + 2) == (False, 11)
    assert plan((0, 1, 2), 1023, 0) == (True, 13)  # 3069 factors: a tie goes to the zero test
    assert plan((0, 1, 2), 2000, 0) == (False, cmp + 2 + 2)  # product of 3 bits: 2 rounds
    assert plan((0,), 10, None) == (False, 11)  # any value allowed: compared
    assert zero_test_rounds(10) == 5


def test_the_gate_floor_is_public_and_checked() -> None:
    with pytest.raises(ConfigError):
        GatedSumStep("g", (1, 2), 5, (0,), 10, 1)
    with pytest.raises(ConfigError):
        GatedSumStep("g", (1, 2), 5, (0,), 10, -6)
    GatedSumStep("g", (-3, -5), 5, (0,), 10, -3).check_inputs()  # only gate slots: floor
    with pytest.raises(DataError, match=r"value #0 \(a cohort size\) is below"):
        GatedSumStep("g", (-4, 2), 5, (0,), 10, -3).check_inputs()
    a, b = GatedSumStep("g", (1,), 5, (0,), 10, 0), GatedSumStep("g", (1,), 5, (0,), 10)
    assert a.public_spec() != b.public_spec()


def split(total: int, m: int, rnd: random.Random) -> list[int]:
    """``total`` as ``m`` parts (any sign)."""
    parts = [rnd.randint(-1000, 1000) for _ in range(m - 1)]
    return [*parts, total - sum(parts)]


def split_counts(total: int, m: int, rnd: random.Random) -> list[int]:
    cuts = sorted(rnd.randint(0, total) for _ in range(m - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]


#: name -> (gate slots, floor, pooled gate values, other pooled totals)
CASES: dict[str, tuple[tuple[int, ...], int | None, tuple[int, ...], tuple[int, ...]]] = {
    "below": ((0,), 0, (K - 1,), (123, -4)),
    "at": ((0,), 0, (K,), (123, -4)),
    "above": ((0,), 0, (K + 1,), (0, 0)),
    "zero": ((0,), 0, (0,), (5, 6)),
    "large": ((0,), 0, (3 * MAX_ROWS_PER_SITE,), (-(2**47), 2**47)),
    "negative-totals": ((0,), 0, (40,), (-(2**46) + 17, -3 * 2**45, -1)),
    "two-gates-one-fails": ((0, 2), 0, (50, 9), (7,)),
    "two-gates-pass": ((0, 2), 0, (10, 12), (-7,)),
    "noisy-fails": ((0,), -4, (-3,), (7,)),
    "noisy-lowest": ((0,), -4, (-12,), (7,)),
    "noisy-passes": ((0,), -4, (K,), (-7,)),
    "compared-fails": ((0,), None, (-5,), (7,)),
    "compared-passes": ((0,), None, (K + 5,), (-7,)),
}


def case_values(m: int, seed: int) -> dict[str, tuple[list[tuple[int, ...]], tuple[int, ...]]]:
    """Per case: one vector per party (gate slots first or at 2) and the pooled vector."""
    rnd = random.Random(seed)
    out = {}
    for name, (gates, floor, gate_totals, others) in CASES.items():
        pooled = list(others)
        for slot, n in sorted(zip(gates, gate_totals, strict=True)):
            pooled.insert(slot, n)
        cols = []
        for slot, total in enumerate(pooled):
            if slot not in gates:
                cols.append(split(total, m, rnd))
            elif floor == 0:
                cols.append(split_counts(total, m, rnd))
            else:  # noisy counts: any parts within the floor
                lo = -BOUND if floor is None else floor
                parts = [max(lo, total // m)] * (m - 1)
                cols.append([*parts, total - sum(parts)])
                assert min(cols[-1]) >= lo
        out[name] = ([tuple(c[p] for c in cols) for p in range(m)], tuple(pooled))
    return out


def run_cases(m: int, seed: int) -> tuple[list[JobResult], dict[str, tuple[int, ...]]]:
    values = case_values(m, seed)
    names = tuple(f"hospital-{chr(97 + p)}" for p in range(m))
    jobs = [MpcJob(f"gates-{m}", p, names, tuple(
        GatedSumStep(name, values[name][0][p], BOUND, CASES[name][0], K, CASES[name][1])
        for name in CASES)) for p in range(m)]
    return run_local(jobs, timeout=50), {k: v[1] for k, v in values.items()}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("m", [3, 5])
def test_gated_sums_release_exactly_when_every_gate_passes(m: int) -> None:
    results, pooled = run_cases(m, seed=m)
    for name, (gates, floor, _, _) in CASES.items():
        passes = all(pooled[name][i] >= K for i in gates)
        want = (1, *pooled[name]) if passes else (0,)
        by_zero, rounds = gated_sum_plan(
            GatedSumStep(name, pooled[name], BOUND, gates, K, floor), m)
        assert by_zero == (floor is not None), name
        if not by_zero and not passes:
            rounds -= 1  # a comparison that fails skips the output of the totals
        for r in results:
            assert r.totals(name) == want, name
            assert all(type(v) is int for v in r.totals(name))
            step = next(s for s in r.steps if s.name == name)
            # the comparison's randomness may be counted after an early peer input: +1
            assert rounds <= step.rounds <= rounds + (0 if by_zero else 1), (name, step.rounds)
    s = next(s for s in results[0].steps if s.name == "at")
    print(f"\ngated sum, {m} parties, one gate at {K}: {s.rounds} rounds, {s.seconds:.3f} s, "
          f"{s.bytes_sent} bytes sent by party 0")


@dataclass(frozen=True)
class OpenedGatedSumStep(GatedSumStep):
    """A gated sum that also reports every value its runner opened (for this test only)."""

    kind: ClassVar[str] = "test-gated-opened"


_CALLS: contextvars.ContextVar[list[Any]] = contextvars.ContextVar("opened_calls")


@register(OpenedGatedSumStep)
async def _run_opened(rt: Any, step: OpenedGatedSumStep) -> Sequence[int]:
    """Run the real gated sum with ``rt.output`` observed; returns ``(len(released),
    *released, modulus, number of outputs, *opened values)``. Steps run concurrently, each in
    its own task: the outputs are filed by the task's context."""
    calls: list[Any] = []
    _CALLS.set(calls)
    if "output" not in vars(rt):  # observe once per worker, for every step
        real = rt.output

        def observed(x: Any, *args: Any, **kwargs: Any) -> Any:
            fut = real(x, *args, **kwargs)
            _CALLS.get().append(fut)
            return fut

        rt.output = observed
    released = list(await start_step(rt, GatedSumStep(**asdict(step))))
    opened = [v for fut in calls for v in await fut]
    modulus = type(opened[0]).order
    return [len(released), *released, modulus, len(calls), *(v.value for v in opened)]


def run_observed(steps: dict[str, tuple[tuple[int, ...], ...]], gates: tuple[int, ...],
                 ) -> dict[str, tuple[list[int], int, int, list[int]]]:
    """Per step: released, modulus, number of outputs, opened values (party 0's view)."""
    names = ("a", "b", "c")
    jobs = [MpcJob("observed", p, names, tuple(
        OpenedGatedSumStep(k, v[p], BOUND, gates, K, 0) for k, v in steps.items()))
        for p in range(3)]
    out = {}
    for r in run_local(jobs, timeout=50)[:1]:
        for s in r.steps:
            t = list(s.totals)
            n = t[0]
            released, (modulus, calls), opened = t[1:1 + n], t[1 + n:3 + n], t[3 + n:]
            out[s.name] = (released, modulus, calls, opened)
    return out


@pytest.mark.timeout(60)
def test_a_failed_gate_opens_only_zeros() -> None:
    n_below = ((4, 9000, -5), (3, 17, 0), (2, -1, 2**40))  # gate total 9 < 10
    n_at = ((4, 9000, -5), (3, 17, 0), (3, -1, 2**40))  # gate total 10
    got = run_observed({"below": n_below, "at": n_at, "at-again": n_at}, (0,))
    released, _, calls, opened = got["below"]
    assert released == [0]
    assert calls == 1 and opened == [0, 0, 0, 0]  # w and v_j = t_j * w: all zero
    for name in ("at", "at-again"):
        released, p, calls, opened = got[name]
        assert released == [1, 10, 9016, 2**40 - 5]
        w, vs = opened[0], opened[1:]
        assert calls == 1 and w != 0
        signed = [v * pow(w, -1, p) % p for v in vs]
        assert [v - p if v > p // 2 else v for v in signed] == released[1:]
    assert got["at"][3][0] != got["at-again"][3][0]  # a fresh random mask every time
