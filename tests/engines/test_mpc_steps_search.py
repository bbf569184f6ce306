"""Order statistics by k-ary search with real MPyC workers, against numpy on the pooled data."""

from __future__ import annotations

import numpy as np
import pytest

from securecalc.core.plans import search_arity, search_splits
from securecalc.engines.mpc import JobResult, MpcJob, SearchStep, run_local, run_local_outcomes
from securecalc.engines.mpc.steps_compare import comparison_rounds
from securecalc.engines.mpc.steps_search import search_iterations
from securecalc.errors import DataError, PartyError

PROBS = (0.0, 0.1, 0.25, 0.5, 0.9, 1.0)


def cases(m: int, seed: int) -> dict[str, tuple[int, int, list[np.ndarray]]]:
    """Per step name: (n_points, arity, one sorted int64 index array per party)."""
    rng = np.random.default_rng(seed)

    def draw(n_points: int, *sizes: int) -> list[np.ndarray]:
        return [np.sort(rng.integers(0, n_points, size)).astype(np.int64) for size in sizes]

    empty = np.zeros(0, dtype=np.int64)
    rest = [empty] * (m - 3)
    grid = draw(10**4, 1000, 2500, 10, *([7] * (m - 3)))
    return {
        "grid-1e4": (10**4, 8, grid),
        "grid-1e4-auto": (10**4, 0, grid),  # arity 100 at 3-5 parties, 22 beyond
        "ties": (12, 8, draw(5, 40, 3, 17, *([2] * (m - 3)))),  # few distinct values
        "all-equal": (100, 8, [np.full(n, 42, dtype=np.int64) for n in (5, 9, 1)] + rest),
        "one-party-empty": (1000, 3, [*draw(1000, 30, 0, 11), *rest]),
        "only-one-value": (50, 8, [np.array([49], dtype=np.int64), empty, empty, *rest]),
        "n-zero": (10**4, 8, [empty] * m),
        "one-point": (1, 8, [np.zeros(n, dtype=np.int64) for n in (3, 0, 2)] + rest),
        "two-points": (2, 8, [np.array([0, 1, 1]), np.array([1]), np.array([0])] + rest),
        "binary": (300, 2, draw(300, 20, 21, 22, *([1] * (m - 3)))),
        "edges": (64, 16, [np.array([0, 0, 63]), np.array([63]), np.array([0, 31, 32])] + rest),
        "edges-auto": (64, 0, [np.array([0, 0, 63]), np.array([63]), np.array([0, 31, 32])]
                       + rest),  # one iteration of 63 comparisons per prob
        "binary-auto": (300, 0, draw(300, 20, 21, 22, *([1] * (m - 3)))),  # arity 18: 2 iterations
    }


def jobs_for(job_id: str, m: int, seed: int) -> tuple[list[MpcJob], dict]:
    names = tuple(f"hospital-{chr(97 + p)}" for p in range(m))
    cs = cases(m, seed)
    jobs = [MpcJob(job_id, p, names, tuple(SearchStep(k, idx[p], n, PROBS, arity)
                                             for k, (n, arity, idx) in cs.items()))
            for p in range(m)]
    return jobs, cs


def check(results: list[JobResult], cs: dict) -> None:
    for name, (_, _, idx) in cs.items():
        pooled = np.concatenate(idx)
        if len(pooled):
            want = (len(pooled),
                    *(int(v) for v in np.quantile(pooled, PROBS, method="inverted_cdf")))
        else:
            want = (0, *([-1] * len(PROBS)))
        for r in results:
            assert r.totals(name) == want, name
            assert all(type(v) is int for v in r.totals(name))


@pytest.mark.timeout(60)
def test_three_parties_match_numpy_inverted_cdf() -> None:
    jobs, cs = jobs_for("search-3", 3, seed=3)
    results = run_local(jobs, timeout=50)
    check(results, cs)
    steps = {s.name: s for s in results[0].steps}
    # N is released beside the masked opening of the first counts; nothing is searched
    assert 2 <= steps["n-zero"].rounds <= 3
    assert steps["one-point"].rounds == 2  # a single grid point: nothing to compare
    assert search_iterations(10**4, 8) == 5
    big = steps["grid-1e4"]
    # per iteration its input (beside its randomness; the first also carries N), the masked
    # opening of the counts (the first beside the output of N), the rest of the comparison
    # and the output of its bits
    n = big.totals[0]
    expected = 5 * (comparison_rounds(n.bit_length() + 2) + 1)
    assert n < 2**13 and expected == 40
    # on one machine, each of the 5 inputs may be counted as a dependency of the comparison
    # randomness it overlaps (see steps.py)
    assert expected <= big.rounds <= expected + 5, big.rounds
    print(f"\nsearch on 10**4 points, arity 8, {len(PROBS)} probs, N={big.totals[0]}: "
          f"{big.rounds} rounds, {big.seconds:.3f} s, {big.bytes_sent} bytes sent by party 0")
    auto = steps["grid-1e4-auto"]
    assert search_arity(10**4, search_splits(3)) == 100 and search_iterations(10**4, 100) == 2
    expected = 2 * (comparison_rounds(n.bit_length() + 2) + 1)
    assert expected == 16 and expected <= auto.rounds <= expected + 2, auto.rounds
    assert steps["edges-auto"].rounds <= comparison_rounds(5) + 2  # one iteration
    print(f"search on 10**4 points, arity 100, {len(PROBS)} probs, N={n}: "
          f"{auto.rounds} rounds, {auto.seconds:.3f} s, {auto.bytes_sent} bytes sent by party 0")


@pytest.mark.timeout(60)
def test_five_parties_match_numpy_inverted_cdf() -> None:
    jobs, cs = jobs_for("search-5", 5, seed=5)
    check(run_local(jobs, timeout=50), cs)


@pytest.mark.timeout(60)
def test_a_million_values_and_three_probs() -> None:
    rng = np.random.default_rng(7)
    idx = [np.sort(rng.integers(0, 10**4, n)).astype(np.int64) for n in (10**6, 3000, 1)]
    probs = (0.1, 0.5, 0.9)
    jobs = [MpcJob("search-big", p, ("a", "b", "c"), (SearchStep("q", idx[p], 10**4, probs),))
            for p in range(3)]
    results = run_local(jobs, timeout=50)
    pooled = np.concatenate(idx)
    want = (len(pooled), *(int(v) for v in np.quantile(pooled, probs, method="inverted_cdf")))
    for r in results:
        assert r.totals("q") == want
    s = results[0].steps[0]
    # arity 100 (the default for 10**4 points at 3 parties): 2 iterations; 2**13 <= N <
    # 2**29: P = 5, so 2 * 9 rounds
    assert 18 <= s.rounds <= 18 + 2
    print(f"\nsearch on 10**4 points, arity 100, 3 probs, N={len(pooled)}: {s.rounds} rounds, "
          f"{s.seconds:.3f} s, {s.bytes_sent} bytes sent by party 0")


@pytest.mark.timeout(60)
def test_out_of_range_index_fails_at_that_party_before_sending() -> None:
    idx = [np.array([1, 2]), np.array([3, 10]), np.array([0])]  # 10 is outside [0, 9]
    jobs = [MpcJob("search-bad", p, ("a", "b", "c"), (SearchStep("q", idx[p], 10, (0.5,)),),
                   peer_timeout=3.0) for p in range(3)]
    outcomes = run_local_outcomes(jobs, timeout=50)
    bad = outcomes[1]
    assert isinstance(bad.error, DataError) and r"outside [0, 9]" in str(bad.error)
    assert (bad.frames_sent, bad.bytes_sent) == (0, 0)
    for o in (outcomes[0], outcomes[2]):
        assert isinstance(o.error, PartyError) and o.error.party == "b"
