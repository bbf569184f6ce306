"""How each step kind runs on an MPyC runtime: a small registry keyed by step type.

A runner is called with the worker's MPyC runtime and the step, issues its MPyC operations
and returns an awaitable of the released integers. Runners must be deterministic in the
public parameters only (every party issues the same operations in the same order, so MPyC's
program counters agree) and must release only through scalar field elements or scalar secure
types, whose output path uses ``field.from_bytes`` (never ``pickle.loads`` on a peer's bytes,
as secure arrays and ``transfer()`` do). This module does not import mpyc; the worker passes
the runtime in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from securecalc.engines.mpc.failure import Failure
from securecalc.engines.mpc.job import Step, SumStep, sum_bit_length
from securecalc.errors import ConfigError

Runner = Callable[[Any, Any], Awaitable[Sequence[int]]]
_RUNNERS: dict[type, Runner] = {}
R = TypeVar("R", bound=Runner)


def register(step_type: type) -> Callable[[R], R]:
    """Register the decorated runner for ``step_type``: ``@register(MyStep)``."""

    def deco(runner: R) -> R:
        _RUNNERS[step_type] = runner
        return runner

    return deco


def start_step(rt: Any, step: Step) -> Awaitable[Sequence[int]]:
    """Issue ``step`` on runtime ``rt``; the awaitable yields the released integers."""
    runner = _RUNNERS.get(type(step))
    if runner is None:
        raise ConfigError(f"no MPC runner for step kind {type(step).__name__}")
    return runner(rt, step)


@register(SumStep)
async def _run_sum(rt: Any, step: SumStep) -> Sequence[int]:
    """One ``input`` (a message to every peer), a local sum, one ``output``: 2 rounds.

    Works on the field of ``SecInt(l)`` directly: ``mpc.input``/``mpc.output`` of plain field
    elements run the same Shamir protocol as for secure integers (same marshalling), but
    with one future per vector instead of one per element, which is about 10x faster.
    """
    n = len(step.values)
    if not n:
        return ()
    field = rt.SecInt(sum_bit_length(step.bound, len(rt.parties))).field
    shared = await rt.input([field(v) for v in step.int_values()])  # one list per party
    for pid, shares in enumerate(shared):
        if len(shares) != n:
            raise Failure("protocol", "malformed share vector", pid)
    totals = [field(sum(a.value for a in column)) for column in zip(*shared, strict=True)]
    return [int(a) for a in await rt.output(totals)]  # signed: |total| < p / 2
