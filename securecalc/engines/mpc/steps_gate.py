"""Threshold gates by a polynomial zero test: release totals only if pooled counts are large.

A pooled count ``n`` lies in the public range ``[lo, k)`` iff ``P(n) = prod_{i=lo}^{k-1}
(n - i)`` is 0 in the field (``|n - i| < p``). A cohort gate takes ``lo`` as the least
admissible pooled count (``n >= k`` passes); a cell gate takes ``lo = 1`` (``n = 0`` or
``n >= k`` passes: the roots are ``1..k-1``). With ``r`` a
random field element (PRSS, no messages), ``w = r * P(n)`` is 0 when ``n < k`` and uniform
over the nonzero elements otherwise (``r = 0`` with probability ``1/p``: a false fail, never
a leak), so opening ``w`` reveals only pass/fail. The release is folded into the same
opening: for every total ``t_j`` also open ``v_j = t_j * w``. On a pass ``t_j = v_j / w``; on a
fail every opened value is 0. Several gates multiply their polynomials into one ``w``.

Depth. With ``F`` the factors (``r`` and every ``n_g - i``), all products have at most
``|F| + 1`` leaves, so a tree of depth ``D = ceil(log2(|F| + 1)) = |F|.bit_length()`` computes
them; its ``D - 1`` lower levels use reshared multiplications (one ``schur_prod`` per level for
the whole batch), the top one is local, its degree-``2t`` result opened at threshold ``2t``
after adding a pseudorandom degree-``2t`` sharing of zero (so the opened polynomial is uniform
but for its constant term). :func:`zero_test_rounds`: input, ``D - 1`` levels, one opening.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from securecalc.engines.mpc.failure import Failure
from securecalc.engines.mpc.steps_compare import open_2t, randoms, settled


@dataclass(eq=False)
class Mul:
    """A product node: ``left * right`` (each a node or a shared field element)."""

    left: Any
    right: Any


def depth(node: Any) -> int:
    """Multiplicative depth of ``node`` (0 for a leaf)."""
    if not isinstance(node, Mul):
        return 0
    return 1 + max(depth(node.left), depth(node.right))


def balanced(leaves: Sequence[Any]) -> Any:
    """The product of ``leaves`` (at least one) as a tree of depth ``ceil(log2(len))``."""
    row = list(leaves)
    while len(row) > 1:
        row = [Mul(row[j], row[j + 1]) if j + 1 < len(row) else row[j]
               for j in range(0, len(row), 2)]
    return row[0]


def with_totals(factors: Sequence[Any], totals: Sequence[Any], d: int) -> tuple[Any, list[Any]]:
    """Trees for ``prod(factors)`` and each ``t * prod(factors)``, all of depth ``<= d``.

    Needs ``len(factors) + 1 <= 2**d``. The subproducts without a total are shared by all.
    """
    half = 1 << (d - 1)
    if len(factors) <= half:
        b = balanced(factors)
        return b, [Mul(t, b) for t in totals]
    a = balanced(factors[:half])
    b, tb = with_totals(factors[half:], totals, d - 1)
    return Mul(a, b), [Mul(a, x) for x in tb]


async def open_products(rt: Any, field: Any, roots: Sequence[Mul]) -> list[Any]:
    """Open every root's product: its subtrees by reshared multiplications, one batched
    ``schur_prod`` per depth level, then the top multiplication locally, opened at ``2t``."""
    roots = [x if isinstance(x, Mul) else Mul(x, field(1)) for x in roots]
    levels: dict[int, list[Mul]] = {}
    seen: dict[Mul, int] = {}

    def visit(x: Any) -> int:
        if not isinstance(x, Mul):
            return 0
        if x not in seen:
            seen[x] = 1 + max(visit(x.left), visit(x.right))
            levels.setdefault(seen[x], []).append(x)
        return seen[x]

    for root in roots:
        visit(root.left)
        visit(root.right)
    value: dict[Mul, Any] = {}

    def val(x: Any) -> Any:
        return value[x] if isinstance(x, Mul) else x

    for d in sorted(levels):
        batch = levels[d]
        prods = await settled(rt.schur_prod([val(x.left) for x in batch],
                                            [val(x.right) for x in batch]))
        if len(prods) != len(batch):
            raise Failure("internal", "product of the wrong length")
        value.update(zip(batch, prods, strict=True))
    return await open_2t(rt, field, [val(x.left) * val(x.right) for x in roots])


#: one gate: a shared pooled value ``n`` and the public range ``[low, threshold)`` it must
#: avoid
Gate = tuple[Any, int, int]


def gate_factors(gates: Sequence[tuple[int, int]]) -> int:
    """Factors ``n - i`` of gates given as ``(low, threshold)``."""
    return sum(max(0, threshold - low) for low, threshold in gates)


async def release_if_large(rt: Any, field: Any,
                           tests: Sequence[tuple[Sequence[Gate], Sequence[Any]]]
                           ) -> list[list[int] | None]:
    """Per test ``(gates, totals)`` (shares), the totals (signed ints) if no gate value
    ``n`` lies in its range ``[low, threshold)``, else None; all tests in one batch
    (:func:`zero_test_rounds` of the factors of the largest test)."""
    if not tests:
        return []
    masks = rt._randoms(field, len(tests))  # PRSS: no messages; without: one input
    roots: list[Mul] = []
    masks = await randoms(masks)
    for r, (gates, totals) in zip(masks, tests, strict=True):
        factors = [r, *(n - i for n, low, threshold in gates for i in range(low, threshold))]
        w, vs = with_totals(factors, totals, len(factors).bit_length())
        roots += [w, *vs]
    opened = await open_products(rt, field, roots)
    out: list[list[int] | None] = []
    pos = 0
    for _, totals in tests:
        w, vs = opened[pos], opened[pos + 1:pos + 1 + len(totals)]
        pos += 1 + len(totals)
        if w.value:
            out.append([int(v / w) for v in vs])  # signed: |t| < p / 2
        elif any(v.value for v in vs):
            raise Failure("protocol", "a failed gate opened a nonzero value")
        else:
            out.append(None)
    return out


def zero_test_rounds(factors: int) -> int:
    """Rounds of :func:`release_if_large` with ``factors`` factors ``n - i`` per test, its
    input included: ``D + 1`` with ``D = (factors + 1).bit_length()``."""
    return (factors + 1).bit_length() + 1
