"""The public bookkeeping of a k-ary search (no mpyc, no secrets): intervals and split points.

For each probability the search keeps an interval ``[lo, hi]`` of grid indices known to hold
the answer, the smallest ``k`` with ``C(k) >= target``; it starts as ``[0, n_points - 1]``
(``C(n_points - 1) = N >= target``). An interval of ``L > 1`` points is cut into parts of
``q = ceil(L / arity)`` points; the last point of every part but the last is a split point
``s`` (at most ``arity - 1``). The secure comparisons reveal ``[C(s) >= target]`` for each, and
the new interval is the first part whose split point has the bit set (the last part if none
has). Parts shrink as ``ceil(L / arity)``, so after ``i`` iterations an interval holds at most
``ceil(n_points / arity**i)`` points: :func:`search_iterations` iterations find every answer.

Every party derives the same split points from the same revealed bits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def search_iterations(n_points: int, arity: int) -> int:
    """``ceil(log_arity(n_points))``, exactly: the iterations of a search over ``n_points``."""
    i, reach = 0, 1
    while reach < n_points:
        i, reach = i + 1, reach * arity
    return i


def split_points(lo: int, hi: int, arity: int) -> list[int]:
    """The split points of ``[lo, hi]`` (none when it holds one point)."""
    size = hi - lo + 1
    if size <= 1:
        return []
    q = -(-size // arity)
    return list(range(lo + q - 1, hi, q))


class KarySearch:
    """Intervals of ``n_probs`` parallel searches over ``[0, n_points - 1]``."""

    def __init__(self, n_points: int, n_probs: int, arity: int):
        self.arity = arity
        self.intervals = [(0, n_points - 1)] * n_probs
        self.iterations = 0

    @property
    def done(self) -> bool:
        return all(lo == hi for lo, hi in self.intervals)

    def pending(self) -> list[tuple[int, int]]:
        """``(prob index, split point)`` of every comparison of this iteration, in order."""
        return [(j, s) for j, (lo, hi) in enumerate(self.intervals)
                for s in split_points(lo, hi, self.arity)]

    def points(self) -> list[int]:
        """The distinct split points of this iteration, ascending (the counts to input)."""
        return sorted({s for _, s in self.pending()})

    def narrow(self, bits: Sequence[int]) -> None:
        """Apply the revealed bits ``[C(s) >= target]``, one per :meth:`pending` pair."""
        pairs = self.pending()
        if len(bits) != len(pairs):
            raise ValueError("one bit per pending comparison")
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        for (j, s), bit in zip(pairs, bits, strict=True):
            if bit and j not in first:
                first[j] = s
            if j not in first:
                last[j] = s  # the last split point below the first set bit
        for j, (lo, hi) in enumerate(self.intervals):
            if lo == hi:
                continue
            new_hi = first.get(j, hi)
            new_lo = last[j] + 1 if j in last else lo
            self.intervals[j] = (new_lo, new_hi)
        self.iterations += 1

    def results(self) -> list[int]:
        return [lo for lo, _ in self.intervals]


def local_counts(indices: np.ndarray, points: Sequence[int]) -> list[int]:
    """``#(indices <= s)`` for each split point ``s`` (``indices`` sorted int64)."""
    if not points:
        return []
    found = np.searchsorted(indices, np.asarray(points, dtype=np.int64), side="right")
    return [int(c) for c in found]


def plain_search(counts: Sequence[int], probs: Sequence[float], arity: int,
                 target: Callable[[float, int], int]) -> tuple[int, ...]:
    """Reference: the same search on pooled counts in the clear (``counts[k] = C(k)``).

    ``target(p, n)`` is the rank function (``job.search_target``). For tests and benchmarks.
    """
    n = int(counts[-1])
    if n == 0:
        return (0, *([-1] * len(probs)))
    targets = [target(p, n) for p in probs]
    search = KarySearch(len(counts), len(probs), arity)
    while not search.done:
        search.narrow([int(counts[s] >= targets[j]) for j, s in search.pending()])
    return (n, *search.results())
