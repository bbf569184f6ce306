"""How each step kind runs on an MPyC runtime: a small registry keyed by step type.

A runner is called with the worker's MPyC runtime and the step, issues its MPyC operations
and returns an awaitable of the released integers. Runners must be deterministic in the
public parameters only (every party issues the same operations in the same order, so MPyC's
program counters agree) and must release only through scalar field elements or scalar secure
types, whose output path uses ``field.from_bytes`` (never ``pickle.loads`` on a peer's bytes,
as secure arrays and ``transfer()`` do). This module does not import mpyc; the worker passes
the runtime in.

Shares are taken in as field elements and awaited, so that a peer's share vector of the wrong
length is a protocol failure naming that peer (secure-type placeholders would wait forever).
Comparisons run batched on lists of field elements (``steps_compare``): one message per peer
and round for the whole batch, so the rounds do not grow with the batch.

Rounds, as the session measures them (``P = ceil(log2(l + 1))`` for ``l``-bit comparisons;
``comparison_rounds(l) = P + 3`` includes the randomness round; ``l = sum_bit_length(max(bound,
threshold), m)``, 35 for counts and 3 to 5 parties, so ``P = 6``):

* ``SumStep``: 2 (input, output).
* ``SuppressedSumStep`` and ``GatedSumStep`` run whichever of two protocols costs fewer rounds
  for their public parameters (:func:`suppressed_sum_plan`, :func:`gated_sum_plan`; a tie goes
  to the zero test):

  - zero test (``steps_gate``): ``(f + 1).bit_length() + 1`` rounds for ``f`` factors per
    test: input, ``ceil(log2(f + 2)) - 1`` levels of products, one opening of the verdicts
    and the masked totals together. Suppressed sums: ``f = threshold`` per slot, all slots
    in one batch (threshold 5: 4 rounds; 11: 5). Gated sums: ``f = G * (threshold - m *
    gate_floor)`` for ``G`` gates (min_cohort 10, exact counts: 5 rounds for one gate, 6 for
    two; a noise floor of -4 at 3 parties: 6); cell gates add ``cell_threshold - 1`` factors
    each and always run the zero test;
  - comparison (``steps_compare``): suppressed ``P + 5`` (input overlapping the comparisons'
    randomness, opening, ``P`` product rounds, zero test, multiplication, output: 11 at
    ``l = 35``); gated ``P + 5 + ceil(log2 G)`` (the same, then the product of the ``G``
    bits, the output of the verdict and, on a pass only, of the totals: 11 for one gate).

  So the zero test runs up to ``f = 2**(P + 4) - 2`` factors (1022 at ``l = 35``; more with
  several gates) and the comparison beyond, and for a gated sum whose gate slots may hold
  any admissible value (``gate_floor=None``, the default: the range below the threshold is
  then too wide). Measured locally (3 parties, min_cohort 10): a gated mean (one gate,
  ``gate_floor=0``) 12 rounds by comparison, 5 by zero test; a suppressed sum of 25 slots at
  threshold 11: 11 rounds by comparison, 5 by zero test (and 8.5 KB instead of 46 KB sent).
* ``SearchStep``: ``I * (P + 4)``: per iteration the input of its counts (the first with N;
  each beside its comparisons' randomness), their opening under statistical masks (the first
  beside the output of N), the rest of the comparisons (``P`` product rounds and the zero
  test) and the output of their bits. The masks are drawn per split point, not per
  comparison, so all probabilities share one opening and one set of random bits per point.
  ``l = N.bit_length() + 2``, ``I = search_iterations(n_points, arity)``; the default arity is
  ``search_arity(n_points, search_splits(m))``, the fewest iterations with at most 100
  comparisons per prob each at ``m <= 5`` parties, 64 beyond (a comparison's CPU and bytes
  grow with ``m``, its rounds do not). 10**4 points at 3-5 parties: arity 100, ``I = 2``: 16
  rounds for ``N < 2**13`` (``P = 4``), 18 for ``2**13 <= N < 2**29`` (``P = 5``), 20
  beyond; at 6 or more parties arity 22, ``I = 3``: 24, 27, 30. A gate on N (``min_n =
  10``: the zero test of 10 factors, 4 rounds after the input) adds 3, the masked opening
  running beside it. Measured locally (3 parties, this 2-core box under load; 10**4 points, 6
  probs, N = 3510, no gate on N; party 0's bytes): arity 8, 5 iterations: 41 rounds, 119 KB;
  arity 100, 2 iterations: 17 rounds, 0.9 s, 779 KB (5 probs, N = 60000, ``min_n = 10``: 21
  rounds at arity 100, 32 at arity 22).

  CPU against rounds (5 probs, N = 20000 per party, ``min_n = 10``; step seconds on this
  2-core box under a load of 8-10, all parties on it): 3 parties: arity 22 0.34 s and 30
  rounds, arity 100 1.4 s and 22 rounds; 10 parties (no PRSS): arity 22 3.6 s and 41
  rounds, arity 100 9.6 s and 28 rounds. So few parties take arity 100 (8 rounds fewer for
  about 0.7 s of CPU per party: worth it once a round costs more than ~90 ms), ten and more
  arity 22.
* ``IterativeStep``: 2 per round of the program; with gate slots the first round is a zero
  test instead (``zero_test_rounds(G * threshold)``: 7 rounds for 5 gates at min_cohort 10).

Without PRSS (many parties, see the worker's ``uses_prss``) shared random values are input by
``t + 1`` parties (one round, overlapping where they are requested ahead), random bits are
squares of those opened after a resharing, and every opening at degree ``2t`` is a resharing
then an opening: each comparison and zero test then takes one or two more rounds.

These are the message chains of the protocols, which is what the session reports over a real
network. On one machine a round may be counted twice where an ``input`` overlaps the
randomness of a comparison: MPyC may take a fast peer's input share (which arrived before
this party sent its randomness request) first, and the session then counts that share as a
dependency of the request. So a local run may show up to one more round per overlapped input
(comparisons in ``SuppressedSumStep``/``GatedSumStep``: 12; ``SearchStep``: up to ``I - 1``
more). The zero test has no such overlap: a local run measures its rounds exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from securecalc.core.local_stats import Histogram
from securecalc.core.plans import MAX_ROWS_PER_SITE, rank_releasable
from securecalc.engines.mpc.failure import Failure
from securecalc.engines.mpc.step_specs import (
    GatedSumStep,
    IterativeStep,
    SearchStep,
    Step,
    SumStep,
    SuppressedSumStep,
    replay,
    search_target,
    sum_bit_length,
)
from securecalc.engines.mpc.steps_compare import (
    compare_points,
    comparison_field,
    comparison_rounds,
    less_than_zero,
    open_points,
    prepare,
    prepare_points,
    products,
    settled,
)
from securecalc.engines.mpc.steps_gate import gate_factors, release_if_large, zero_test_rounds
from securecalc.engines.mpc.steps_search import KarySearch
from securecalc.errors import ConfigError, DataError

Runner = Callable[[Any, Any], Awaitable[Sequence[int]]]
_RUNNERS: dict[type, Runner] = {}
R = TypeVar("R", bound=Runner)
T = TypeVar("T")


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


async def pooled_shares(rt: Any, field: Any, values: Sequence[int]) -> list[Any]:
    """One ``input`` of ``values`` by every party; the element-wise sums of the shares.

    Returns field elements (shares of the totals). A peer's vector of another length is a
    protocol failure naming it.
    """
    n = len(values)
    if not n:
        return []
    shared = await settled(rt.input([field(v) for v in values]))  # one list per party
    for pid, shares in enumerate(shared):
        if len(shares) != n:
            raise Failure("protocol", "malformed share vector", pid)
    return [field(sum(a.value for a in column)) for column in zip(*shared, strict=True)]


async def secure_sum(rt: Any, values: Sequence[int], bound: int) -> list[int]:
    """Element-wise totals over parties of ``values`` (each ``|v| <= bound``): 2 rounds.

    Works on the field of ``SecInt(l)`` directly: ``mpc.input``/``mpc.output`` of plain field
    elements run the same Shamir protocol as for secure integers (same marshalling), but
    with one future per vector instead of one per element, which is about 10x faster.
    """
    if not values:
        return []
    field = rt.SecInt(sum_bit_length(bound, len(rt.parties))).field
    totals = await pooled_shares(rt, field, values)
    return [int(a) for a in await settled(rt.output(totals))]  # signed: |total| < p / 2


def _bits(released: Sequence[int]) -> list[int]:
    bits = [int(b) for b in released]
    if any(b not in (0, 1) for b in bits):
        raise Failure("protocol", "a secure comparison did not yield a bit")
    return bits


@register(SumStep)
async def _run_sum(rt: Any, step: SumStep) -> Sequence[int]:
    """One ``input`` (a message to every peer), a local sum, one ``output``: 2 rounds."""
    return await secure_sum(rt, step.int_values(), step.bound)


def suppressed_sum_plan(step: SuppressedSumStep, parties: int) -> tuple[bool, int]:
    """``(by zero test, rounds)`` of ``step``: the zero test unless a comparison is cheaper.

    The zero test covers every pooled count in ``[m * floor, threshold)``:
    :meth:`SuppressedSumStep.check_inputs` admits only counts ``floor <= v <= bound``."""
    zero = zero_test_rounds(step.threshold - parties * step.floor)
    cmp = comparison_rounds(_compare_length(step.bound, step.threshold, parties)) + 2
    return (True, zero) if zero <= cmp else (False, cmp)


def gated_sum_plan(step: GatedSumStep, parties: int) -> tuple[bool, int]:
    """``(by zero test, rounds)`` of ``step``: the zero test unless a comparison is cheaper.

    Rounds on a pass; a comparison that fails skips the output of the totals (one fewer).
    The zero test tests pooled gate values in ``[m * floor, threshold)`` and cell values in
    ``[1, cell_threshold)``; cell gates are decided only by the zero test."""
    g = len(step.gate_slots)
    zero = zero_test_rounds(gate_factors(_gate_ranges(step, parties)))
    if step.cell_slots:
        return True, zero
    cmp = (comparison_rounds(_compare_length(step.bound, step.threshold, parties))
           + (g - 1).bit_length() + 2)
    return (True, zero) if zero <= cmp else (False, cmp)


def _gate_ranges(step: GatedSumStep, parties: int) -> list[tuple[int, int]]:
    """Per gate slot, then per cell slot, the range ``[low, threshold)`` its total avoids."""
    return ([(parties * step.floor, step.threshold)] * len(step.gate_slots)
            + [(1, step.cell_threshold)] * len(step.cell_slots))


def _compare_length(bound: int, threshold: int, parties: int) -> int:
    return sum_bit_length(max(bound, threshold), parties)  # |total - threshold| fits


@register(SuppressedSumStep)
async def _run_suppressed_sum(rt: Any, step: SuppressedSumStep) -> Sequence[int]:
    """Per slot ``b = [total >= threshold]`` and ``b * total``, all slots in one batch."""
    w = len(step.values)
    if not w:
        return ()
    m = len(rt.parties)
    length = _compare_length(step.bound, step.threshold, m)
    field = comparison_field(rt, length)
    if suppressed_sum_plan(step, m)[0]:
        totals = await pooled_shares(rt, field, step.int_values())
        low = m * step.floor
        kept = await release_if_large(rt, field, [([(t, low, step.threshold)], [t])
                                                  for t in totals])
        return [int(k is not None) for k in kept] + [k[0] if k else 0 for k in kept]
    prep = prepare(rt, field, w, length)
    totals = await pooled_shares(rt, field, step.int_values())
    less = await less_than_zero(rt, prep, [t - step.threshold for t in totals])
    bits = [1 - b for b in less]
    masked = await settled(rt.schur_prod(bits, totals))
    released = [int(v) for v in await settled(rt.output(bits + masked))]  # signed: |v| < p / 2
    return _bits(released[:w]) + released[w:]


@register(GatedSumStep)
async def _run_gated_sum(rt: Any, step: GatedSumStep) -> Sequence[int]:
    """``(1, totals...)`` if every gate total reaches the threshold, else ``(0,)``."""
    gates = list(step.gate_slots)
    m = len(rt.parties)
    length = _compare_length(step.bound, step.threshold, m)
    field = comparison_field(rt, length)
    if gated_sum_plan(step, m)[0]:
        totals = await pooled_shares(rt, field, step.int_values())
        ranges = dict(zip((*gates, *step.cell_slots), _gate_ranges(step, m), strict=True))
        (kept,) = await release_if_large(rt, field, [
            ([(totals[i], *ranges[i]) for i in ranges], list(totals))])
        return (0,) if kept is None else (1, *kept)
    prep = prepare(rt, field, len(gates), length)
    totals = await pooled_shares(rt, field, step.int_values())
    less = await less_than_zero(rt, prep, [totals[i] - step.threshold for i in gates])
    (passed,) = await products(rt, [[1 - b for b in less]])  # all gates must pass
    (verdict,) = _bits([int(v) for v in await settled(rt.output([passed]))])
    if not verdict:
        return (0,)
    return (1, *(int(v) for v in await settled(rt.output(totals))))


@register(SearchStep)
async def _run_search(rt: Any, step: SearchStep) -> Sequence[int]:
    """k-ary search of every prob in parallel; see :class:`SearchStep` and ``steps_search``.

    The first ``input`` carries this party's count N and its counts at the first split points
    (the same for every prob), with the randomness of the first iteration requested just
    before it. Then, side by side: N is released (when ``min_n > 1``, by the zero test of
    ``steps_gate`` and only if it reaches ``min_n``: 4 rounds at ``min_n = 10``), and the
    pooled counts at the first split points are opened under statistical masks of
    ``sum_bit_length(MAX_ROWS_PER_SITE, m)`` random bits, wide enough for any N
    (:func:`~securecalc.engines.mpc.steps_compare.open_points`). Once N is known, the targets
    follow from it, probabilities whose rank is not releasable are skipped, and each
    comparison ``C(s) >= target`` goes on from the masked count on ``l = N.bit_length() + 2``
    bits (``|C(s) - target| <= N``) without another opening; only the comparisons' bits are
    output. Each later iteration inputs its counts (with its randomness), opens them masked
    and compares them likewise.
    """
    counter = step.counter()  # checked before the job started; cheap to redo
    m = len(rt.parties)
    arity = step.arity_for(m)
    width = sum_bit_length(MAX_ROWS_PER_SITE, m)
    field = comparison_field(rt, width)
    every = KarySearch(step.n_points, len(step.probs), arity)
    points = every.points()  # the same for every prob
    randomness = prepare_points(rt, field, len(points), len(every.pending()), width)
    pooled = await pooled_shares(rt, field, [counter.n, *counter.at_or_below(points)])
    masked = forked(rt, open_points(rt, randomness, pooled[1:]))  # beside the gate on N
    if step.min_n > 1:  # N is opened only if it reaches min_n
        (kept,) = await release_if_large(rt, field, [([(pooled[0], 0, step.min_n)],
                                                      [pooled[0]])])
        n = 0 if kept is None else kept[0]
    else:
        n = int((await settled(rt.output([pooled[0]])))[0])
    opened = await masked  # every party awaits it, whatever N is
    if n < 0 or n > m * MAX_ROWS_PER_SITE:
        raise Failure("protocol", "the pooled count is out of range")
    probs = [j for j, p in enumerate(step.probs)
             if rank_releasable(p, search_target(p, n), n, step.min_rank)]
    if n == 0 or not probs:
        return (n, *([-1] * len(step.probs)))
    targets = {j: search_target(step.probs[j], n) for j in probs}
    length = sum_bit_length(n, 1)
    at = {s: i for i, s in enumerate(points)}
    pairs = [(at[s], targets[j], k) for k, (j, s) in enumerate(every.pending()) if j in targets]
    search = KarySearch(step.n_points, len(probs), arity)
    if pairs:
        less = await compare_points(rt, field, length, opened, pooled[1:], pairs)
        search.narrow([1 - b for b in _bits(await settled(rt.output(less)))])
    found = await _search(rt, field, search, counter, [targets[j] for j in probs], length)
    out = [-1] * len(step.probs)
    for j, index in zip(probs, found, strict=True):
        out[j] = index
    return (n, *out)


def forked(rt: Any, coro: Awaitable[T]) -> asyncio.Future[T]:
    """Run ``coro`` beside the caller under a program counter forked now (as the session
    runs steps), so that every party numbers its MPyC messages alike."""
    from mpyc.asyncoro import _ProgramCounterWrapper, _wrap_in_coro  # mpyc is loaded

    task: asyncio.Future[T] = asyncio.ensure_future(
        _wrap_in_coro(_ProgramCounterWrapper(rt, coro)))
    return task


async def _search(rt: Any, field: Any, search: KarySearch, counter: Histogram,
                  targets: Sequence[int], length: int) -> list[int]:
    """The remaining iterations of ``search`` towards ``targets`` (comparisons on ``length``
    bits): per iteration the counts' input (beside their randomness), their masked opening,
    the comparisons and the output of their bits."""
    while not search.done:
        points = search.points()
        pending = search.pending()
        randomness = prepare_points(rt, field, len(points), len(pending), length)
        counts = await pooled_shares(rt, field, counter.at_or_below(points))
        opened = await open_points(rt, randomness, counts)
        at = {s: i for i, s in enumerate(points)}
        less = await compare_points(rt, field, length, opened, counts,
                                    [(at[s], targets[j], k)
                                     for k, (j, s) in enumerate(pending)])
        search.narrow([1 - b for b in _bits(await settled(rt.output(less)))])
    return list(search.results())


@register(IterativeStep)
async def _run_iterative(rt: Any, step: IterativeStep) -> Sequence[int]:
    """Rounds of :func:`secure_sum`; the state follows from released totals only."""
    from securecalc.core.encoding import mpc_decode

    program = step.program
    state = program.initial_state()
    out = [0]
    rounds = 0
    while rounds < program.max_rounds and not program.done(state):
        plan = program.round_plan(state)
        try:
            values, bound = step.encode_round(plan, step.local(state))
        except DataError as exc:  # nothing of this round was shared
            raise Failure("input", str(exc)) from None
        except ConfigError as exc:
            raise Failure("config", str(exc)) from None
        if rounds == 0 and step.gate_slots:
            kept = await _gated_round(rt, step, values, bound)
            if kept is None:
                return (0,)
            totals = kept
        else:
            totals = await secure_sum(rt, values, bound)
        out += [len(totals), *totals]
        state = program.advance(state, mpc_decode(plan, totals))
        rounds += 1
    out[0] = rounds
    return (1, *out) if step.gate_slots else out


async def _gated_round(rt: Any, step: IterativeStep, values: Sequence[int],
                       bound: int) -> list[int] | None:
    """The first round's totals if every gate slot reaches the threshold, else None: the
    zero test of :func:`release_if_large` (exact counts: ``G * threshold`` factors)."""
    field = comparison_field(rt, _compare_length(bound, step.threshold, len(rt.parties)))
    totals = await pooled_shares(rt, field, values)
    (kept,) = await release_if_large(
        rt, field, [([(totals[i], 0, step.threshold) for i in step.gate_slots], totals)])
    return kept


__all__ = ["gated_sum_plan", "pooled_shares", "register", "replay", "secure_sum", "start_step",
           "suppressed_sum_plan"]
