"""Pure parts of the suppressed-sum, search and iterative steps: validation, digests, the
search's public bookkeeping against numpy, and replay. No workers here."""

from __future__ import annotations

import math
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecalc.core.plans import MAX_SEARCH_SPLITS, SearchPlan, SumPlan, search_arity
from securecalc.engines.mpc import (
    IterativeStep,
    MpcJob,
    SearchStep,
    SuppressedSumStep,
    replay,
    search_target,
)
from securecalc.engines.mpc.steps_search import (
    KarySearch,
    local_counts,
    plain_search,
    search_iterations,
    split_points,
)
from securecalc.errors import ConfigError, DataError, ProtocolError

NAMES = ("alpha", "beta", "gamma")
PROBS = (0.0, 0.1, 0.25, 0.5, 0.9, 1.0)


# --------------------------------------------------------------------- suppressed sum
@pytest.mark.timeout(10)
@pytest.mark.parametrize("bad", [-1, 11, 2.0, True, None])
def test_suppressed_inputs_are_counts_within_bound(bad: object) -> None:
    step = SuppressedSumStep("s", (0, bad, 10), 10, 5)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="value #1"):
        step.check_inputs()
    SuppressedSumStep("s", (0, 10, 3), 10, 5).check_inputs()


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("bound", "threshold"), [(0, 5), (10, 0), (10, True), (10, 2.5)])
def test_suppressed_parameters(bound: object, threshold: object) -> None:
    with pytest.raises(ConfigError):
        SuppressedSumStep("s", (1,), bound, threshold)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- search
@pytest.mark.timeout(10)
def test_iterations_are_ceil_log_arity() -> None:
    assert search_iterations(10**4, 8) == 5
    assert [search_iterations(n, 2) for n in (1, 2, 3, 4, 5, 1024, 1025)] == [0, 1, 2, 2, 3, 10, 11]
    for n in range(1, 600):
        for a in (2, 3, 8, 16):
            s = KarySearch(n, 1, a)
            depth = 0
            while not s.done:  # the worst case: always the first part
                s.narrow([1] * len(s.pending()))
                depth += 1
            assert depth <= search_iterations(n, a)
            assert len(split_points(0, n - 1, a)) <= a - 1


@pytest.mark.timeout(10)
def test_arity_gives_fewest_iterations_within_the_split_cap() -> None:
    cap = MAX_SEARCH_SPLITS
    sizes = [*range(1, 3000), 10**4, 10**5, 10**6, 66**3, 66**3 + 1, 2**40, 2**62]
    for n in sizes:
        a = search_arity(n)
        i = search_iterations(n, a)
        assert 2 <= a <= cap + 1 and i == search_iterations(n, cap + 1), n  # fewest iterations
        assert a == 2 or search_iterations(n, a - 1) > i, n  # and then the fewest comparisons
    assert [search_arity(n) for n in (2, 65, 66, 10**3, 10**4, 10**6)] == [2, 65, 9, 32, 22, 32]
    plan = SearchPlan(lo=0.0, hi=9999.0, resolution=1.0, probs=(0.5,))
    assert plan.arity == 0 and SearchPlan(0.0, 1.0, 0.5, (0.5,), 8).arity == 8
    auto = SearchStep("q", (), 10**4, (0.5,))
    assert auto.arity == 0 and [auto.arity_for(m) for m in (3, 5, 6, 20)] == [100, 100, 22, 22]
    assert [search_iterations(10**4, auto.arity_for(m)) for m in (3, 10)] == [2, 3]
    assert SearchStep("q", (), 10**4, (0.5,), 5).arity_for(3) == 5


@pytest.mark.timeout(60)
@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.integers(0, 9999), min_size=1, max_size=200),
       n_extra=st.integers(0, 5000))
def test_search_results_do_not_depend_on_the_arity(values: list[int], n_extra: int) -> None:
    n_points = max(values) + 1 + n_extra
    counts = pooled_counts(np.array(values, dtype=np.int64), n_points)
    want = plain_search(counts, PROBS, 8, search_target)
    assert plain_search(counts, PROBS, search_arity(n_points), search_target) == want


@pytest.mark.timeout(10)
def test_targets_are_exact_decimal_ranks() -> None:
    assert search_target(0.1, 10) == 1  # Fraction(0.1) * 10 > 1: a binary rank would be 2
    assert search_target(0.9, 10) == 9
    assert search_target(0.0, 7) == 1 and search_target(1.0, 7) == 7
    big = 3 * 2**60 + 7  # beyond float precision
    assert search_target(0.5, big) == big // 2 + 1
    assert search_target(0.1, 10**20) == 10**19


def pooled_counts(values: np.ndarray, n_points: int) -> np.ndarray:
    return np.cumsum(np.bincount(values, minlength=n_points))


@pytest.mark.timeout(60)
@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.integers(0, 60), max_size=80),
    n_extra=st.integers(0, 30),
    arity=st.integers(2, 9),
    probs=st.lists(st.floats(0, 1), min_size=1, max_size=4),
)
def test_plain_search_is_numpy_inverted_cdf(values: list[int], n_extra: int, arity: int,
                                            probs: list[float]) -> None:
    n_points = max(values, default=0) + 1 + n_extra
    counts = pooled_counts(np.array(values, dtype=np.int64), n_points)
    got = plain_search(counts, probs, arity, search_target)
    if not values:
        assert got == (0, *([-1] * len(probs)))
        return
    assert got[0] == len(values)
    for p, k in zip(probs, got[1:], strict=True):
        t = search_target(p, len(values))
        assert counts[k] >= t and (k == 0 or counts[k - 1] < t)  # the definition, exactly
    # numpy agrees wherever its float arithmetic is exact (it is for these probabilities)
    fixed = [p for p in PROBS if p in probs] or list(PROBS)
    want = np.quantile(np.array(values), fixed, method="inverted_cdf")
    assert plain_search(counts, fixed, arity, search_target)[1:] == tuple(int(w) for w in want)


@pytest.mark.timeout(10)
def test_local_counts_use_searchsorted() -> None:
    idx = np.array([0, 0, 2, 5, 5, 5, 9], dtype=np.int64)
    assert local_counts(idx, [0, 1, 4, 5, 9]) == [2, 2, 3, 6, 7]
    assert local_counts(idx, []) == []
    assert all(type(c) is int for c in local_counts(idx, [3]))


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("indices", "match"),
    [
        (np.array([0, 3, 10], dtype=np.int64), r"outside \[0, 9\]"),
        (np.array([-1, 3], dtype=np.int64), r"outside \[0, 9\]"),
        ((0, 2**70), r"outside \[0, 9\]"),
        (np.array([3, 1], dtype=np.int64), "not sorted"),
        (np.array([0.0, 1.0]), "integer array"),
        (np.array([[0, 1]]), "integer array"),
        (np.array([True, False]), "integer array"),
        ((0, 1.5), "#1 is not an integer"),
        ((0, True), "#1 is not an integer"),
    ],
)
def test_search_inputs_are_checked(indices: object, match: str) -> None:
    step = SearchStep("q", indices, 10, (0.5,))  # type: ignore[arg-type]
    with pytest.raises(DataError, match=match) as err:
        step.check_inputs()
    assert "70" not in str(err.value)


@pytest.mark.timeout(10)
def test_search_accepts_int_arrays_and_tuples() -> None:
    for idx in (np.array([0, 4, 9], dtype=np.int32), np.array([0, 4, 9], dtype=np.uint64),
                (0, 4, 9), [np.int64(0), 4, 9], ()):
        a = SearchStep("q", idx, 10, (0.5,)).index_array()  # type: ignore[arg-type]
        assert a.dtype == np.int64 and a.tolist() == list(idx)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"n_points": 0}, "n_points"),
        ({"n_points": 2**62 + 1}, "n_points"),
        ({"arity": 1}, "arity"),
        ({"probs": (0.5, 1.5)}, "probs"),
        ({"probs": (float("nan"),)}, "probs"),
        ({"probs": (True,)}, "probs"),
        ({"probs": 0.5}, "probs"),
    ],
)
def test_search_parameters(kw: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"name": "q", "indices": (), "n_points": 10, "probs": (0.5,)}
    with pytest.raises(ConfigError) as err:
        SearchStep(**{**args, **kw})  # type: ignore[arg-type]
    assert err.value.field == field


# -------------------------------------------------------------------------- iterative
@dataclass(frozen=True)
class Countdown:
    """Round i sums (i + 1) counts; stops when the first total reaches ``stop``."""

    stop: int
    max_rounds: int = 5

    def initial_state(self) -> tuple[int, Fraction]:
        return (0, Fraction(0))

    def round_plan(self, state: tuple[int, Fraction]) -> SumPlan:
        return SumPlan.counts(state[0] + 1)

    def local(self, state: tuple[int, Fraction], data: int) -> tuple[int, ...]:
        return (data + 0,) * (state[0] + 1)  # fails on data that is not a number

    def advance(self, state: tuple[int, Fraction], totals: Sequence[Fraction]) -> object:
        return (state[0] + 1, state[1] + sum(totals))

    def done(self, state: tuple[int, Fraction]) -> bool:
        return state[1] >= self.stop


class NoRepr(Countdown):
    __repr__ = object.__repr__  # type: ignore[assignment]


@pytest.mark.timeout(10)
def test_replay_recovers_the_state_and_rejects_what_does_not_fit() -> None:
    prog = Countdown(stop=10)
    # totals of 3 parties contributing 1 each: round 1 gives 3, round 2 gives 3+3 -> 9,
    # round 3 gives 9 more -> 18 >= 10: done after 3 rounds
    totals = (3, 1, 3, 2, 3, 3, 3, 3, 3, 3)
    assert replay(prog, totals) == (3, Fraction(18))
    assert replay(Countdown(stop=10, max_rounds=0), (0,)) == (0, Fraction(0))
    assert replay(Countdown(stop=100, max_rounds=2), (2, 1, 3, 2, 3, 3)) == (2, Fraction(9))
    for bad in [(), (4, 1, 3), (2, 1, 3, 2, 3, 3), (3, 1, 3, 2, 3, 3, 3, 3, 3),
                (3, 1, 3, 2, 3, 3, 3, 3, 3, 3, 0), (3, 2, 3, 3, 2, 3, 3, 3, 3, 3),
                (1, 1, True), (-1,)]:
        with pytest.raises(ProtocolError):
            replay(prog, bad)
    with pytest.raises(ProtocolError):  # more rounds than the program was done after
        replay(Countdown(stop=1), (2, 1, 3, 2, 3, 3))


@pytest.mark.timeout(10)
def test_iterative_checks_the_first_round_before_the_job() -> None:
    IterativeStep("it", Countdown(10), 5).check_inputs()
    IterativeStep("it", Countdown(10), 2**31).check_inputs()  # the counts plan's bound
    with pytest.raises(DataError, match="outside the declared bound"):
        IterativeStep("it", Countdown(10), 2**32).check_inputs()
    with pytest.raises(DataError, match="should be an integer"):
        IterativeStep("it", Countdown(10), 2.5).check_inputs()  # type: ignore[arg-type]
    IterativeStep("it", Countdown(10, max_rounds=0), 2**40).check_inputs()  # no round runs
    with pytest.raises(DataError, match=r"failed on this party's data \(TypeError\)"):
        IterativeStep("it", Countdown(10), None).check_inputs()  # type: ignore[arg-type]
    with pytest.raises(DataError, match="not a finite number"):
        IterativeStep("it", Countdown(10), float("nan")).check_inputs()  # type: ignore[arg-type]


@pytest.mark.timeout(10)
def test_iterative_needs_a_program_with_a_public_repr() -> None:
    with pytest.raises(ConfigError, match="repr"):
        IterativeStep("it", NoRepr(10), 1)
    with pytest.raises(ConfigError, match="IterativeProgram"):
        IterativeStep("it", object(), 1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        IterativeStep("it", Countdown(10, max_rounds=-1), 1)


# ----------------------------------------------------------------------------- digests
def job(*steps: object, pid: int = 0) -> MpcJob:
    return MpcJob("job-1", pid, NAMES, steps)  # type: ignore[arg-type]


@pytest.mark.timeout(10)
def test_digest_covers_public_parameters_only() -> None:
    idx = np.arange(5, dtype=np.int64)
    base = job(SuppressedSumStep("a", (1, 2), 10, 5), SearchStep("b", idx, 10, (0.5,)),
               IterativeStep("c", Countdown(10), 1)).digest()
    same = job(SuppressedSumStep("a", (7, 0), 10, 5), SearchStep("b", idx[:2] + 1, 10, (0.5,)),
               IterativeStep("c", Countdown(10), 99), pid=2).digest()
    assert same == base  # values, indices and data are private
    for steps in [
        (SuppressedSumStep("a", (1, 2), 10, 6), SearchStep("b", idx, 10, (0.5,)),
         IterativeStep("c", Countdown(10), 1)),
        (SuppressedSumStep("a", (1, 2), 10, 5), SearchStep("b", idx, 11, (0.5,)),
         IterativeStep("c", Countdown(10), 1)),
        (SuppressedSumStep("a", (1, 2), 10, 5), SearchStep("b", idx, 10, (0.5, 0.6)),
         IterativeStep("c", Countdown(10), 1)),
        (SuppressedSumStep("a", (1, 2), 10, 5), SearchStep("b", idx, 10, (0.5,), 4),
         IterativeStep("c", Countdown(10), 1)),
        (SuppressedSumStep("a", (1, 2), 10, 5), SearchStep("b", idx, 10, (0.5,)),
         IterativeStep("c", Countdown(11), 1)),
        (SuppressedSumStep("a", (1, 2), 10, 5), SearchStep("b", idx, 10, (0.5,), 0, 10, 5),
         IterativeStep("c", Countdown(10), 1)),
        (SuppressedSumStep("a", (1, 2), 10, 5), SearchStep("b", idx, 10, (0.5,)),
         IterativeStep("c", Countdown(10), 1, (0,), 10)),
    ]:
        assert job(*steps).digest() != base
    spec = SearchStep("b", idx, 10, (0.5,)).public_spec()
    # arity 0: chosen by the party count (part of the job); then min_n and min_rank
    assert spec == ("search", "b", 10, (0.5,), 0, 1, 1)
    it = IterativeStep("c", Countdown(10), 1).public_spec()
    assert it[2].endswith("test_mpc_steps_pure.Countdown") and "stop=10" in it[3]


@pytest.mark.timeout(10)
def test_jobs_with_new_steps_pickle() -> None:
    idx = np.arange(1000, dtype=np.int64)
    j = job(SuppressedSumStep("a", (1, 2), 10, 5), SearchStep("b", idx, 1000, (0.5,)))
    assert pickle.loads(pickle.dumps(j)) == j
    it = job(IterativeStep("c", Countdown(10), np.arange(3)))
    back = pickle.loads(pickle.dumps(it))
    assert back.digest() == it.digest() and back.steps[0].program == Countdown(10)
    assert "1000 indices" in repr(j.steps[1]) and "999" not in repr(j.steps[1])
    assert math.isfinite(hash(j.steps[1]))
