"""Batched secure comparison: shares of ``[a_i < 0]`` for a whole vector at once.

MPyC's ``runtime.sgn(a, LT=True)`` (Toft's protocol with a statistically masked opening)
compares one secure number. Issuing one per element runs them in parallel, but every element
then sends its own messages at every step, and their interleaving on the event loop
lengthens the longest message chain the session measures. This module is the same protocol
on lists of field elements: each round is one ``output``/``_reshare`` of the whole vector, so
the rounds do not depend on the vector's length, and nothing travels but scalar field
elements (``field.to_bytes``/``from_bytes``; never pickle).

For ``l``-bit values (``-2**(l-1) <= a < 2**(l-1)``) and MPyC's statistical security parameter
``k`` (default 30), in rounds:

1. random bits ``r`` (``l`` per element) and one more bit per element for a random sign
   (PRSS plus one opening of squares, all in one message; :func:`prepare` issues it early so
   that this round overlaps with the preceding ``input``), and ``k``-bit random ``r'`` (PRSS,
   no messages);
2. open ``c = a + 2**l + r + 2**l * r'``, which hides ``a`` statistically;
3. ``ceil(log2(l + 1))`` rounds: the product of ``l + 1`` shared factors per element;
4. open the product times a random nonzero mask (is it zero?) at degree ``2t``, randomized by
   a pseudorandom sharing of zero (:func:`open_2t`), and derive ``[a < 0]`` locally.

So :func:`comparison_rounds` ``= ceil(log2(l + 1)) + 3`` rounds, the first of which can
overlap an ``input``. Without PRSS (MPyC's ``no_prss``, chosen for many parties) the random
values are input by ``t + 1`` parties, the random bits are squares opened after a resharing
(:func:`random_bits`) and the opening at ``2t`` is a resharing and an opening
(:func:`open_2t`): two rounds more.

Uses MPyC 0.11 internals (``_randoms``, ``random_bits`` on a field, ``output(threshold=2t)``,
``thresha.pseudorandom_share_zero``, ``_reshare``), as ``runtime.sgn`` and ``random_bits``
do; the engine pins ``mpyc==0.11``. Like the runners, this module does not import mpyc at
import time: the runtime is passed in (:func:`open_2t` takes ``mpyc.thresha`` from the
worker's already imported mpyc).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from securecalc.engines.mpc.failure import Failure


def settled(fut: Any) -> Any:
    """An MPyC future to await, shielded from cancellation.

    When a job fails, the session cancels the running step. Cancelling an MPyC future that
    MPyC is still going to fill makes MPyC's own callback raise ``InvalidStateError``, which
    asyncio logs as an unhandled error; a shielded future is left for MPyC to fill.
    """
    return asyncio.shield(fut)


def comparison_field(rt: Any, length: int) -> Any:
    """A prime field in which :func:`less_than_zero` works for ``length``-bit values.

    The field of ``SecInt(max(length, 2k))``: at least ``length + k + 2`` bits (for the masked
    opening) and ``3k`` bits (a random mask is nonzero except with probability ``2**-3k``).
    """
    k = rt.options.sec_param
    return rt.SecInt(max(length, 2 * k)).field


def comparison_rounds(length: int) -> int:
    """Rounds of one batched comparison of ``length``-bit values, its randomness included
    (:func:`prepare` can overlap that round with an input): ``ceil(log2(length + 1)) + 3``."""
    return math.ceil(math.log2(length + 1)) + 3


@dataclass
class Prepared:
    """Randomness for ``n`` comparisons of ``length``-bit values, requested ahead of use."""

    field: Any
    n: int
    length: int
    bits: Any  # awaitable: n * (length + 1) shares of random bits (the last n give signs)
    r_high: Any  # n shares of k-bit random numbers (PRSS: a list; without: an awaitable)
    masks: Any  # n shares of random field elements, as ``r_high``


def prepare(rt: Any, field: Any, n: int, length: int) -> Prepared:
    """Request the randomness for ``n`` comparisons now (issues MPyC operations: every party
    must call it at the same point)."""
    k = rt.options.sec_param
    bits = field.order.bit_length()
    if bits < length + k + 2 or bits // k < 2 or length < 1:
        raise Failure("internal", "comparison field too small")
    if not n:
        return Prepared(field, 0, length, None, [], [])
    bits = request_bits(rt, field, n * (length + 1))  # one opening for all of them
    r_high = rt._randoms(field, n, 1 << k)
    masks = rt._randoms(field, n)  # nonzero except with negligible probability
    return Prepared(field, n, length, bits, r_high, masks)


async def randoms(values: Any) -> list[Any]:
    """Shares from ``runtime._randoms``: a list with PRSS, an awaitable without (the random
    values are then input by ``t + 1`` parties: one round, issued ahead of use)."""
    if isinstance(values, list):
        return values
    out: list[Any] = await settled(values)
    return out



async def random_bits(rt: Any, prep: Prepared) -> list[int]:
    """The values of ``prep``'s random bits (shares); see :func:`bit_values`."""
    return await bit_values(rt, prep.field, prep.bits)


async def bit_values(rt: Any, field: Any, requested: Any) -> list[int]:
    """The values of random bits requested by :func:`request_bits` (shares).

    With PRSS, MPyC's ``random_bits``. Without, MPyC would multiply ``t + 1`` input signs per
    bit, one coroutine per bit; here the random field elements requested are squared and
    opened (:func:`open_2t`) as a batch, and each bit is ``(r / sqrt(r**2) + 1) / 2``, as
    MPyC's PRSS path does."""
    if not rt.options.no_prss:
        return [b.value for b in await settled(requested)]
    r = await randoms(requested)
    squares = await open_2t(rt, field, [a * a for a in r])
    if any(not sq.value for sq in squares):
        raise Failure("internal", "a random value was zero")
    half = (field.modulus + 1) >> 1
    return [(a.value * field._sqrt(sq.value, INV=True) + 1) * half % field.modulus
            for a, sq in zip(r, squares, strict=True)]


def request_bits(rt: Any, field: Any, n: int) -> Any:
    """Ask for ``n`` random bits now (PRSS: one opening of squares, overlapping whatever is
    in flight; without: random values input by ``t + 1`` parties, squared later)."""
    return rt._randoms(field, n) if rt.options.no_prss else rt.random_bits(field, n)


async def open_2t(rt: Any, field: Any, shares: Sequence[Any]) -> list[Any]:
    """Open degree-``2t`` shares (local products of two degree-``t`` sharings) at threshold
    ``2t``, each plus a pseudorandom degree-``2t`` sharing of zero (PRSS, no messages): the
    opened polynomial is then uniform but for its value at 0, as in MPyC's ``random_bits``.

    Without PRSS the shares are first reshared at degree ``t`` (MPyC's ``_reshare``, one
    more round) and then opened as usual."""
    if rt.options.no_prss:
        reshared = await settled(rt._reshare(list(shares)))
        out: list[Any] = await settled(rt.output(reshared))
        return out
    from mpyc import thresha  # the worker has imported mpyc already

    zeros = thresha.pseudorandom_share_zero(field, len(rt.parties), rt.pid,
                                            rt.prfs(field.order), rt._prss_uci(), len(shares))
    opened: list[Any] = await settled(
        rt.output([a + z for a, z in zip(shares, zeros, strict=True)], threshold=2 * rt.threshold)
    )
    return opened


async def products(rt: Any, factors: list[list[Any]]) -> list[Any]:
    """Per row, the product of its shared factors (rows of equal length), batched by level."""
    rows = [list(r) for r in factors]
    while len(rows[0]) > 1:
        n = len(rows[0])
        left = [r[j] for r in rows for j in range(n % 2, n, 2)]
        right = [r[j + 1] for r in rows for j in range(n % 2, n, 2)]
        prods = await settled(rt.schur_prod(left, right))
        if len(prods) != len(left):
            raise Failure("internal", "product of the wrong length")
        half = n // 2
        rows = [r[: n % 2] + prods[i * half:(i + 1) * half] for i, r in enumerate(rows)]
    return [r[0] for r in rows]


async def less_than_zero(rt: Any, prep: Prepared, a: Sequence[Any]) -> list[Any]:
    """Shares (field elements of ``prep.field``) of ``[a_i < 0]`` for shares ``a_i``.

    Every ``a_i`` must lie in ``[-2**(length-1), 2**(length-1))``.
    """
    field, n, ell = prep.field, prep.n, prep.length
    if len(a) != n:
        raise Failure("internal", "comparison batch of the wrong size")
    if not n:
        return []
    bits = await random_bits(rt, prep)
    r_high = await randoms(prep.r_high)
    r_bits = bits[:n * ell]
    signs = [2 * b - 1 for b in bits[n * ell:]]  # shares of random +-1
    a_rmodl = []
    masked = []
    for i in range(n):
        r_modl = sum(b << j for j, b in enumerate(r_bits[i * ell:(i + 1) * ell]))
        x = a[i] + ((1 << ell) + r_modl)
        a_rmodl.append(x)
        masked.append(x + (r_high[i].value << ell))
    opened = await settled(rt.output(masked))
    rows = [r_bits[i * ell:(i + 1) * ell] for i in range(n)]
    return await compare_opened(rt, field, ell, [c.value for c in opened], a_rmodl, rows,
                                signs, await randoms(prep.masks))


async def compare_opened(rt: Any, field: Any, ell: int, opened: Sequence[int],
                         a_rmodl: Sequence[Any], r_bits: Sequence[Sequence[int]],
                         signs: Sequence[int], masks: Sequence[Any]) -> list[Any]:
    """Steps 3 and 4 of the comparison, after the masked opening: shares of ``[a_i < 0]``.

    Per comparison: ``opened = a + 2**ell + r + 2**ell * R`` (public), ``a_rmodl = a + 2**ell
    + r`` (shares), the ``ell`` bits of ``r`` (share values, least significant first), a
    random sign (share value of +-1) and a random mask (a share)."""
    cs = [c % (1 << ell) for c in opened]
    factors = []
    for i, c in enumerate(cs):
        s = signs[i]
        e = [None] * (ell + 1)
        xors = 0
        for j in range(ell - 1, -1, -1):
            c_j = (c >> j) & 1
            r_j = r_bits[i][j]
            e[j] = field(s + r_j - c_j + 3 * xors)
            xors += 1 - r_j if c_j else r_j
        e[ell] = field(s - 1 + 3 * xors)
        factors.append(e)
    prods = await products(rt, factors)
    zero = await open_2t(rt, field, [p * r for p, r in zip(prods, masks, strict=True)])
    two_l = field(1 << ell)
    out = []
    for i in range(len(cs)):
        h = 3 - signs[i] if zero[i].value == 0 else 3 + signs[i]
        out.append((cs[i] - a_rmodl[i] + (h << (ell - 1))) / two_l)
    return out


@dataclass
class PointMasks:
    """Randomness to mask ``points`` values once on ``width`` bits and to compare them
    ``comparisons`` times, with any public offsets (:func:`compare_points`)."""

    field: Any
    points: int
    comparisons: int
    width: int
    bits: Any  # points * width bits, then one per comparison (its sign)
    r_high: Any  # per point, a k-bit random number
    masks: Any  # per comparison, a random field element


def prepare_points(rt: Any, field: Any, points: int, comparisons: int,
                   width: int) -> PointMasks:
    """Request the randomness of :class:`PointMasks` now (every party at the same point)."""
    k = rt.options.sec_param
    size = field.order.bit_length()
    if size < width + k + 2 or size // k < 2 or width < 1:
        raise Failure("internal", "comparison field too small")
    return PointMasks(field, points, comparisons, width,
                      request_bits(rt, field, points * width + comparisons),
                      rt._randoms(field, points, 1 << k), rt._randoms(field, comparisons))


@dataclass
class OpenedPoints:
    """Values opened under statistical masks: ``opened[i] = v_i + r_i + 2**width * R_i``."""

    opened: list[int]
    r_bits: list[list[int]]  # per point, the bits of r_i (share values, least significant first)
    signs: list[int]  # per comparison, a share value of a random +-1
    masks: list[Any]  # per comparison, a share of a random field element


async def open_points(rt: Any, pm: PointMasks, values: Sequence[Any]) -> OpenedPoints:
    """Open every value (shares, ``|v| < 2**(width - 1)``) under its statistical mask: one
    round once the randomness is there. The opening hides ``v`` as in MPyC's comparisons (a
    mask of ``width + k`` random bits)."""
    if len(values) != pm.points:
        raise Failure("internal", "masked values of the wrong number")
    w = pm.width
    bits = await bit_values(rt, pm.field, pm.bits) if pm.points + pm.comparisons else []
    r_high = await randoms(pm.r_high)
    rows = [bits[i * w:(i + 1) * w] for i in range(pm.points)]
    masked = [v + sum(b << j for j, b in enumerate(row)) + (h.value << w)
              for v, row, h in zip(values, rows, r_high, strict=True)]
    opened = await settled(rt.output(masked)) if masked else []
    return OpenedPoints([c.value for c in opened], rows,
                        [2 * b - 1 for b in bits[pm.points * w:]], await randoms(pm.masks))


async def compare_points(rt: Any, field: Any, ell: int, op: OpenedPoints,
                         values: Sequence[Any], pairs: Sequence[tuple[int, int, int]]
                         ) -> list[Any]:
    """Shares of ``[values[i] - t < 0]`` for each ``(i, t, k)`` of ``pairs``, on ``ell <=
    width`` bits (``|values[i] - t| < 2**(ell - 1)``), with comparison randomness ``k``.

    ``opened[i] - t + 2**ell`` is the masked opening of ``values[i] - t + 2**ell`` under the
    low ``ell`` bits of ``r_i`` (the rest of the mask is a multiple of ``2**ell``), so each
    comparison goes on with :func:`compare_opened` without another opening."""
    if not pairs:
        return []
    two_l = 1 << ell
    opened, a_rmodl, rows, signs, masks = [], [], [], [], []
    for i, t, k in pairs:
        row = op.r_bits[i][:ell]
        opened.append(op.opened[i] - t + two_l)
        a_rmodl.append(values[i] - t + two_l + sum(b << j for j, b in enumerate(row)))
        rows.append(row)
        signs.append(op.signs[k])
        masks.append(op.masks[k])
    return await compare_opened(rt, field, ell, opened, a_rmodl, rows, signs, masks)

