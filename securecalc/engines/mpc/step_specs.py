"""What each MPC step computes and what it releases: pure, picklable step specifications.

Nothing here imports mpyc, so the node process can build steps freely. Every party runs the
same steps in the same order with the same public parameters (kind, name, vector length,
bound); only the values differ. To add a step kind, write a frozen dataclass with ``kind``,
``name``, ``check_inputs()`` and ``public_spec()`` (see :class:`Step`) and register how it
runs in ``steps.py``.

Step kinds: :class:`SumStep` (element-wise totals), :class:`SuppressedSumStep` (totals below
a public threshold withheld), :class:`GatedSumStep` (totals released only if cohort and cell
gates pass), :class:`SearchStep` (order statistics by k-ary search over pooled counts) and
:class:`IterativeStep` (rounds of sums driven by an :class:`IterativeProgram`; see
:func:`replay`).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar, Protocol, SupportsIndex, runtime_checkable

import numpy as np

from securecalc.core.local_stats import Histogram
from securecalc.core.plans import (
    MAX_ROWS_PER_SITE,
    IterativeProgram,
    SumPlan,
    search_arity,
    search_splits,
)
from securecalc.errors import ConfigError, DataError, ProtocolError


@runtime_checkable
class Step(Protocol):
    """One unit of a job: every party inputs local values; an agreed output is released."""

    kind: ClassVar[str]

    @property
    def name(self) -> str:
        """Unique within a job; the released totals are reported under it."""

    def check_inputs(self) -> None:
        """Raise :class:`DataError` unless this party's local inputs are admissible."""

    def public_spec(self) -> tuple[object, ...]:
        """Parameters every party must agree on (never the values themselves)."""


@dataclass(frozen=True)
class SumStep:
    """Element-wise sum over parties of one integer vector per party.

    Every party inputs ``values`` (the same length at every party) with ``|v| <= bound``;
    the released output is the vector of totals. Reveals the totals and nothing else
    (given that each party knows its own input, a party learns the others' total).
    """

    name: str
    values: tuple[int, ...]
    bound: int
    kind: ClassVar[str] = "sum"

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))
        _check_name(self.name)
        _check_int(self.name, "bound", self.bound, 1)

    def check_inputs(self) -> None:
        _check_values(self.name, self.values, -self.bound, self.bound)

    def int_values(self) -> list[int]:
        """The values as Python ints (after :meth:`check_inputs`)."""
        return [operator.index(v) for v in self.values]

    def public_spec(self) -> tuple[object, ...]:
        return (self.kind, self.name, len(self.values), self.bound)


def _as_int(v: object) -> int | None:
    return operator.index(v) if isinstance(v, SupportsIndex) else None


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name:
        raise ConfigError("a step needs a non-empty name", field="name")


def _check_int(name: str, fld: str, value: object, least: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ConfigError(f"step {name!r}: {fld} must be an int >= {least}", field=fld)


def _check_values(name: str, values: Sequence[object], lo: int, hi: int) -> None:
    """DataError unless every value is an integer in ``[lo, hi]`` (values are never echoed)."""
    for i, v in enumerate(values):
        x = None if isinstance(v, bool) else _as_int(v)
        if x is None:
            raise DataError(f"step {name!r}: value #{i} is not an integer")
        if not lo <= x <= hi:
            raise DataError(
                f"step {name!r}: value #{i} is outside the declared bound [{lo}, {hi}]")


@dataclass(frozen=True)
class SuppressedSumStep:
    """Element-wise sum of counts, withholding every total below ``threshold`` from everyone.

    Every party inputs ``values`` (counts: ``floor <= v <= bound``; ``floor`` is 0 for exact
    counts and ``-cap`` for counts carrying a noise share of at most ``cap``). The totals are
    tested against
    the public ``threshold`` securely (a zero test, or a comparison for large thresholds; see
    ``steps.py``), all slots in parallel (the rounds do not grow with the width ``w``), and
    for each slot only ``b = [total >= threshold]`` and ``b * total`` are
    released: ``totals = (b_0, ..., b_{w-1}, masked_0, ..., masked_{w-1})``. Reveals which
    slots are small and the totals of the others; a small total stays secret (masked 0).
    """

    name: str
    values: tuple[int, ...]
    bound: int
    threshold: int
    floor: int = 0
    kind: ClassVar[str] = "suppressed-sum"

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))
        _check_name(self.name)
        _check_int(self.name, "bound", self.bound, 1)
        _check_int(self.name, "threshold", self.threshold, 1)
        _check_int(self.name, "floor", self.floor, -self.bound)
        if self.floor > 0:
            raise ConfigError(f"step {self.name!r}: floor must be <= 0", field="floor")

    def check_inputs(self) -> None:
        _check_values(self.name, self.values, self.floor, self.bound)

    def int_values(self) -> list[int]:
        """The values as Python ints (after :meth:`check_inputs`)."""
        return [operator.index(v) for v in self.values]

    def public_spec(self) -> tuple[object, ...]:
        return (self.kind, self.name, len(self.values), self.bound, self.threshold, self.floor)


@dataclass(frozen=True)
class GatedSumStep:
    """Element-wise sum released only when every cohort slot reaches ``threshold``.

    Every party inputs ``values`` (``|v| <= bound``). The totals in ``gate_slots`` (cohort
    sizes) are tested against the public ``threshold`` securely and only whether *all* of
    them pass is revealed; then, on a pass, the totals are released: ``totals = (1, t_0,
    ...)``, otherwise ``(0,)`` and nothing else. A small cohort's size stays secret from
    everyone.

    ``gate_floor`` is the least value a party may input in a gate slot (public; checked by
    :meth:`check_inputs`): 0 for exact counts, ``-cap`` for counts carrying a noise share of at
    most ``cap``; None (the default) allows any ``-bound <= v``. The narrower the range of
    pooled cohort sizes below the threshold, the cheaper the zero test that decides the gate
    (see ``steps.py``); with the default, it is decided by a secure comparison.

    ``cell_slots`` (exact counts, ``0 <= v``) must each total 0 or at least
    ``cell_threshold`` for the release (DataSHIELD's rule: no small nonzero cell); they are
    decided in the same zero test, which then always decides the gate.
    """

    name: str
    values: tuple[int, ...]
    bound: int
    gate_slots: tuple[int, ...]
    threshold: int
    gate_floor: int | None = None
    cell_slots: tuple[int, ...] = ()
    cell_threshold: int = 1
    kind: ClassVar[str] = "gated-sum"

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))
        object.__setattr__(self, "gate_slots", tuple(self.gate_slots))
        object.__setattr__(self, "cell_slots", tuple(self.cell_slots))
        _check_name(self.name)
        _check_int(self.name, "bound", self.bound, 1)
        _check_int(self.name, "threshold", self.threshold, 1)
        _check_int(self.name, "cell_threshold", self.cell_threshold, 1)
        slots = (*self.gate_slots, *self.cell_slots)
        if not slots or any(not 0 <= i < len(self.values) for i in slots):
            raise ConfigError(f"step {self.name!r}: gate slots outside the vector",
                              field="gate_slots")
        if self.gate_floor is not None:
            _check_int(self.name, "gate_floor", self.gate_floor, -self.bound)
            if self.gate_floor > 0:
                raise ConfigError(f"step {self.name!r}: gate_floor must be <= 0",
                                  field="gate_floor")

    @property
    def floor(self) -> int:
        """The least admissible value in a gate slot."""
        return -self.bound if self.gate_floor is None else self.gate_floor

    def check_inputs(self) -> None:
        _check_values(self.name, self.values, -self.bound, self.bound)
        for i in self.gate_slots:
            if operator.index(self.values[i]) < self.floor:
                raise DataError(f"step {self.name!r}: value #{i} (a cohort size) is below "
                                f"the gate floor {self.floor}")
        for i in self.cell_slots:
            if operator.index(self.values[i]) < 0:
                raise DataError(f"step {self.name!r}: value #{i} (a cell count) is negative")

    def int_values(self) -> list[int]:
        return [operator.index(v) for v in self.values]

    def public_spec(self) -> tuple[object, ...]:
        return (self.kind, self.name, len(self.values), self.bound, self.gate_slots,
                self.threshold, self.gate_floor, self.cell_slots, self.cell_threshold)


#: largest grid a search accepts (indices must fit int64 with room to spare)
MAX_SEARCH_POINTS = 2**62


def search_target(p: float, n: int) -> int:
    """The pooled rank an order statistic needs: ``max(1, ceil(p * n))``, computed exactly.

    ``p`` is taken as the decimal it prints as (``Fraction(repr(p))``: 0.1 is 1/10), not as
    its binary expansion (``Fraction(0.1)`` is slightly above 1/10, which would make the
    0.1-quantile of 10 values the 2nd instead of the 1st). This is what
    ``numpy.quantile(method="inverted_cdf")`` computes whenever its float arithmetic is exact,
    and it stays exact for counts far beyond 2**53.
    """
    return max(1, math.ceil(Fraction(repr(float(p))) * n))


@dataclass(frozen=True, eq=False, repr=False)
class SearchStep:
    """Order statistics of pooled values by a k-ary search over pooled counts.

    Each party holds ``indices``: its local values as a
    :class:`~securecalc.core.local_stats.Histogram` (counts per grid index in
    ``[0, n_points - 1]``), or as their sorted grid indices (an int64 array or a sequence of
    ints). With ``C(k)`` the pooled number of
    indices ``<= k`` and ``N = C(n_points - 1)``, the step first releases ``N``, then finds for
    every ``probs[j]`` the smallest ``k`` with ``C(k) >= search_target(p, N)`` (numpy's
    ``inverted_cdf``: p = 0 gives the minimum, p = 1 the maximum), all probabilities in
    parallel. ``totals = (N, k_0, ..., k_{P-1})``, or ``(0, -1, ..., -1)`` when ``N == 0``.

    Reveals ``N`` and the outcome of each secure comparison ``C(s) >= target_j`` at public
    split points ``s``; these equal ``[s >= k_j]``, so they say nothing beyond the results.

    Cost: :func:`~securecalc.engines.mpc.steps_search.search_iterations` iterations
    (``ceil(log_arity(n_points))``), each one ``input`` of at most ``(arity - 1) *
    len(probs)`` counts and one batch of secure comparisons on ``N.bit_length() + 2`` bits
    (``ceil(log2(l + 1)) + 3`` rounds: 7 for ``N < 2**13``, 8 for ``N < 2**29``) whose bits are
    then output. ``arity`` 0 (the default) is chosen by the number of parties ``m`` when the
    step runs (:meth:`arity_for`): the fewest iterations with at most
    ``search_splits(m)`` comparisons per prob each (100 up to 5 parties, 64 beyond): for
    10**4 points arity 100 and 2 iterations at 3-5 parties, arity 22 and 3 iterations beyond
    (``3 * 8 = 24`` rounds for ``N < 2**13``, 27 for ``N < 2**29``; see ``steps.py``),
    whatever the number of probs. The results do not depend on the arity, only the
    comparisons revealed on the way (each equal to ``[s >= k_j]``). Equality compares the
    public parameters and the indices.

    Gates: ``N`` is released only if it reaches ``min_n`` (a zero test inside the
    computation, :func:`~securecalc.engines.mpc.steps_gate.release_if_large`; otherwise
    ``totals = (0, -1, ...)``), and a probability is searched only if its target rank is
    :func:`~securecalc.core.plans.rank_releasable` with ``min_rank`` (otherwise its index is
    -1).
    """

    name: str
    indices: np.ndarray | tuple[int, ...] | Histogram
    n_points: int
    probs: tuple[float, ...]
    arity: int = 0
    min_n: int = 1
    min_rank: int = 1
    kind: ClassVar[str] = "search"

    def __post_init__(self) -> None:
        name = self.name
        _check_name(name)
        _check_int(name, "n_points", self.n_points, 1)
        _check_int(name, "min_n", self.min_n, 1)
        _check_int(name, "min_rank", self.min_rank, 1)
        if self.n_points > MAX_SEARCH_POINTS:
            raise ConfigError(f"step {name!r}: n_points must be <= 2**62", field="n_points")
        if not (isinstance(self.arity, int) and not isinstance(self.arity, bool)
                and self.arity == 0):
            _check_int(name, "arity", self.arity, 2)
        try:
            probs = tuple(self.probs)
        except TypeError:
            raise ConfigError(f"step {name!r}: probs must be a sequence", field="probs") from None
        if not all(isinstance(p, int | float) and not isinstance(p, bool) and
                   math.isfinite(p) and 0 <= p <= 1 for p in probs):
            raise ConfigError(f"step {name!r}: every prob must be a number in [0, 1]",
                              field="probs")
        object.__setattr__(self, "probs", tuple(float(p) for p in probs))
        if not isinstance(self.indices, np.ndarray | Histogram):
            object.__setattr__(self, "indices", tuple(self.indices))

    def arity_for(self, parties: int) -> int:
        """The arity the search runs with among ``parties`` parties (``arity``, or when 0
        ``search_arity(n_points, search_splits(parties))``)."""
        return self.arity or search_arity(self.n_points, search_splits(parties))

    def __repr__(self) -> str:  # never shows the values
        size = (self.indices.n if isinstance(self.indices, Histogram)
                else len(self.indices))
        return (f"SearchStep(name={self.name!r}, <{size} indices>, "
                f"n_points={self.n_points}, probs={self.probs!r}, arity={self.arity})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SearchStep):
            return NotImplemented
        return self.public_spec() == other.public_spec() and self.counter() == other.counter()

    def __hash__(self) -> int:
        return hash(self.public_spec())

    def counter(self) -> Histogram:
        """The site's input as counts per grid index (``n`` and ``at_or_below``, what the
        search needs); :class:`DataError` unless admissible."""
        if not isinstance(self.indices, Histogram):
            keys, counts = np.unique(self.index_array(), return_counts=True)
            return Histogram(keys.astype(np.int64), counts.astype(np.int64))
        where = f"step {self.name!r}"
        keys, counts = self.indices.keys, self.indices.counts
        if (not isinstance(keys, np.ndarray) or not isinstance(counts, np.ndarray)
                or keys.ndim != 1 or counts.shape != keys.shape
                or keys.dtype.kind not in "iu" or counts.dtype.kind not in "iu"):
            raise DataError(f"{where}: the histogram must be two 1-D integer arrays of one "
                            "length")
        if keys.size and (keys.min() < 0 or keys.max() > self.n_points - 1):
            raise DataError(f"{where}: a grid index is outside [0, {self.n_points - 1}]")
        if keys.size > 1 and bool(np.any(keys[1:] <= keys[:-1])):
            raise DataError(f"{where}: the histogram's grid indices are not increasing")
        if counts.size and counts.min() < 1:
            raise DataError(f"{where}: a histogram count is not positive")
        if int(counts.sum(dtype=object)) > MAX_ROWS_PER_SITE:
            raise DataError(f"{where}: more than {MAX_ROWS_PER_SITE} values")
        return Histogram(keys.astype(np.int64), counts.astype(np.int64))

    def index_array(self) -> np.ndarray:
        """The indices as a sorted 1-D int64 array; :class:`DataError` unless admissible."""
        where = f"step {self.name!r}"
        hi = self.n_points - 1
        a = self.indices
        if isinstance(a, Histogram):
            return self.counter().sorted_values()
        if isinstance(a, np.ndarray):
            if a.ndim != 1 or a.dtype.kind not in "iu":
                raise DataError(f"{where}: the grid indices must be a 1-D integer array")
        else:
            for i, v in enumerate(a):
                if isinstance(v, bool) or _as_int(v) is None:
                    raise DataError(f"{where}: grid index #{i} is not an integer")
            a = np.array([operator.index(v) for v in a], dtype=object)
        if len(a) > MAX_ROWS_PER_SITE:
            raise DataError(f"{where}: more than {MAX_ROWS_PER_SITE} values")
        if len(a) and (a.min() < 0 or a.max() > hi):
            raise DataError(f"{where}: a grid index is outside [0, {hi}]")
        a = np.ascontiguousarray(a, dtype=np.int64)
        if len(a) > 1 and bool(np.any(a[1:] < a[:-1])):
            raise DataError(f"{where}: the grid indices are not sorted")
        return a

    def check_inputs(self) -> None:
        self.counter()

    def public_spec(self) -> tuple[object, ...]:
        return (self.kind, self.name, self.n_points, self.probs, self.arity, self.min_n,
                self.min_rank)


@dataclass(frozen=True, eq=False)
class IterativeStep:
    """Rounds of secure sums whose inputs depend on the totals released before.

    Every party holds the same ``program`` (an :class:`IterativeProgram`: pure, deterministic,
    picklable, with a repr that shows its public parameters, e.g. a dataclass) and its own
    ``data``. Starting from ``program.initial_state()``, while ``not program.done(state)`` and
    fewer than ``program.max_rounds`` rounds ran: ``plan = program.round_plan(state)``, every
    party inputs ``mpc_encode(plan, program.local(state, data))`` (each ``|v| <=
    mpc_bound(plan)``, checked before it is shared), the totals are released and ``state =
    program.advance(state, mpc_decode(plan, totals))``. The state derives from released totals
    only, so every party takes the same decisions.

    ``totals = (r, w_1, t_1..., w_2, t_2..., ..., w_r, t_r...)``: the number of rounds, then per
    round its width and released integers; :func:`replay` recovers the final state from them.
    Reveals the totals of every round and nothing else. Cost: 2 rounds per round of the
    program. Equality is identity (``data`` may be anything).

    With ``gate_slots`` (exact counts of the first round's plan), the first round is released
    only if each of them reaches ``threshold`` (the zero test of :class:`GatedSumStep`);
    every later round sums over the same rows. ``totals`` then start with the verdict:
    ``(1, r, ...)`` on a pass, ``(0,)`` otherwise.
    """

    name: str
    program: IterativeProgram
    data: Any
    gate_slots: tuple[int, ...] = ()
    threshold: int = 1
    kind: ClassVar[str] = "iterative"

    def __post_init__(self) -> None:
        _check_name(self.name)
        object.__setattr__(self, "gate_slots", tuple(self.gate_slots))
        _check_int(self.name, "threshold", self.threshold, 1)
        if not isinstance(self.program, IterativeProgram):
            raise ConfigError(f"step {self.name!r}: the program lacks IterativeProgram methods",
                              field="program")
        _check_int(self.name, "max_rounds", self.program.max_rounds, 0)
        if type(self.program).__repr__ is object.__repr__:
            raise ConfigError(f"step {self.name!r}: the program needs a repr of its public "
                              "parameters (the default repr differs between processes)",
                              field="program")

    def first_round(self) -> tuple[SumPlan, tuple[int, ...], int] | None:
        """The first round's plan, encoded inputs and bound, or None if no round runs."""
        program = self.program
        state = program.initial_state()
        if program.max_rounds < 1 or program.done(state):
            return None
        plan = program.round_plan(state)
        values, bound = self.encode_round(plan, self.local(state))
        return plan, values, bound

    def local(self, state: Any) -> Sequence[Any]:
        """``program.local(state, data)``; a failure on this party's data is a DataError
        (naming the exception's type only, never a value)."""
        try:
            return self.program.local(state, self.data)
        except (DataError, ConfigError):
            raise
        except Exception as exc:  # noqa: BLE001 - reported without its message
            raise DataError(f"step {self.name!r}: the program failed on this party's data "
                            f"({type(exc).__name__})") from None

    def encode_round(self, plan: SumPlan, local: Sequence[Any]) -> tuple[tuple[int, ...], int]:
        """``(mpc_encode(plan, local), mpc_bound(plan))``; :class:`DataError` if inadmissible.

        A program that returns a plan the engine cannot run is a :class:`ConfigError`.
        """
        from securecalc.core.encoding import mpc_bound, mpc_encode

        where = f"step {self.name!r}"
        if not isinstance(plan, SumPlan) or plan.suppress_below:
            raise ConfigError(f"{where}: a round plan must be a SumPlan without suppression")
        local = tuple(local)
        if len(local) != plan.width:
            raise DataError(f"{where}: the program gave {len(local)} values for a round of "
                            f"width {plan.width}")
        for i, (v, integral) in enumerate(zip(local, plan.integral, strict=True)):
            try:
                exact = Fraction(v)
            except (TypeError, ValueError, OverflowError):
                raise DataError(f"{where}: value #{i} is not a finite number") from None
            if integral and exact.denominator != 1:
                raise DataError(f"{where}: value #{i} should be an integer")
        bound = mpc_bound(plan)
        values = mpc_encode(plan, local)
        for i, v in enumerate(values):
            if abs(v) > bound:
                raise DataError(
                    f"{where}: value #{i} is outside the declared bound [-{bound}, {bound}]")
        return values, bound

    def check_inputs(self) -> None:
        """Checks the first round's inputs (later rounds are checked before each input)."""
        first = self.first_round()
        if self.gate_slots and first is not None:
            plan, values, _ = first
            if any(not 0 <= i < plan.width or values[i] < 0 for i in self.gate_slots):
                raise DataError(f"step {self.name!r}: a cohort size is outside the first "
                                "round or negative")

    def public_spec(self) -> tuple[object, ...]:
        cls = type(self.program)
        return (self.kind, self.name, f"{cls.__module__}.{cls.__qualname__}",
                repr(self.program), self.gate_slots, self.threshold)


def replay(program: IterativeProgram, totals: Sequence[int]) -> Any:
    """The final state of ``program`` from an :class:`IterativeStep`'s released ``totals``.

    Pure and deterministic: replays ``program.advance`` on the released integers of every
    round. Raises :class:`ProtocolError` unless the totals are exactly what the step releases
    for this program (round count, widths, stopping rule).
    """
    from securecalc.core.encoding import mpc_decode

    def bad(why: str) -> ProtocolError:
        return ProtocolError(f"released iterative totals do not fit the program ({why})")

    items = list(totals)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        raise bad("not integers")
    if not items or not 0 <= items[0] <= program.max_rounds:
        raise bad("round count")
    state = program.initial_state()
    pos = 1
    for _ in range(items[0]):
        if program.done(state):
            raise bad("rounds after the program was done")
        plan = program.round_plan(state)
        if pos >= len(items) or items[pos] != plan.width or pos + 1 + plan.width > len(items):
            raise bad("round width")
        state = program.advance(state, mpc_decode(plan, items[pos + 1:pos + 1 + plan.width]))
        pos += 1 + plan.width
    if pos != len(items):
        raise bad("length")
    if items[0] < program.max_rounds and not program.done(state):
        raise bad("stopped before the program was done")
    return state


def sum_bit_length(bound: int, m: int) -> int:
    """Bit length ``l`` of the secure integers for a sum over ``m`` values in ``[-bound, bound]``.

    ``SecInt(l)`` holds ``[-2**(l-1), 2**(l-1))`` and ``|total| <= m * bound``: one bit for the
    sign and one bit of margin on top of the magnitude. (MPyC's prime has about ``l + 32``
    bits, so a total could not wrap even without the margin.)
    """
    return (m * bound).bit_length() + 2


__all__ = [
    "MAX_SEARCH_POINTS",
    "GatedSumStep",
    "IterativeStep",
    "SearchStep",
    "Step",
    "SumStep",
    "SuppressedSumStep",
    "replay",
    "search_target",
    "sum_bit_length",
]
