"""A new step kind registered from outside the engine: a secure comparison revealing one bit.

It exercises the step registry and, because MPyC's comparison draws pseudorandom shares, the
PRSS keys exchanged in the handshake: with mismatched keys the bits would come out wrong.
The worker imports this module when it unpickles the step, which registers the runner.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from securecalc.engines.mpc import MpcJob, SumStep, run_local, sum_bit_length
from securecalc.engines.mpc.steps import register


@dataclass(frozen=True)
class AtLeastStep:
    """Reveal, per element, only whether the total over parties is at least ``k``."""

    name: str
    values: tuple[int, ...]
    bound: int
    k: int
    kind: ClassVar[str] = "test-at-least"

    def check_inputs(self) -> None:
        SumStep(self.name, self.values, self.bound).check_inputs()

    def public_spec(self) -> tuple[object, ...]:
        return (self.kind, self.name, len(self.values), self.bound, self.k)


@register(AtLeastStep)
def _run_at_least(rt: Any, step: AtLeastStep) -> Awaitable[Sequence[int]]:
    secint = rt.SecInt(sum_bit_length(step.bound + abs(step.k), len(rt.parties)))
    shared = rt.input([secint(v) for v in step.values])
    return rt.output([rt.sum(list(c)) >= step.k for c in zip(*shared, strict=True)])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("m", [3, 5])
def test_registered_comparison_step_reveals_correct_bits(m: int) -> None:
    values = [(5, -7, 3, 0), (-2, 9, 0, 0), (7, -1, -3, 0)] + [(0, 0, 0, 0)] * (m - 3)
    names = tuple("abcde"[:m])  # totals 10, 1, 0, 0
    jobs = [
        MpcJob(f"cmp-{m}", p, names, (AtLeastStep("ge1", v, 10, 1), SumStep("sum", v, 10)))
        for p, v in enumerate(values)
    ]
    for r in run_local(jobs, timeout=50):
        assert r.totals("ge1") == (1, 1, 0, 0)
        assert r.totals("sum") == (10, 1, 0, 0)
        assert r.steps[0].rounds > 2  # a comparison costs rounds beyond input and output
