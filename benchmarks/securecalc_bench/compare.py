"""Relative error of a released value against a reference, whatever their nesting.

Values are numbers, lists and dicts. Dicts are matched by their common keys (or, with none in
common, by position); lists of the same length element by element; a dict against a list of
the same length by position. Numbers are grouped by the innermost dict key above them
(``estimate``, ``se``, ``survival``, a table column...), the error of a group is normwise,
``max|a - b| / max|b|``, and the result is the largest over groups: a standard error of 1e-2
is judged against other standard errors, not against an estimate of 1e2. Keys in
:data:`SKIPPED` (p-values, whose relative error in the far tail means nothing) are left out.
None when nothing could be aligned.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

SKIPPED = frozenset({"p_value", "p", "pvalue"})
Pair = tuple[str, float, float]


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, int | float | Fraction):
        value = float(x)
        return value if math.isfinite(value) else None
    return None


def _seq(x: Any) -> list[Any] | None:
    if isinstance(x, list | tuple):
        return list(x)
    if hasattr(x, "tolist"):  # numpy arrays
        as_list = x.tolist()
        return as_list if isinstance(as_list, list) else None
    return None


def _pairs(value: Any, ref: Any, key: str = "") -> list[Pair]:
    if key in SKIPPED:
        return []
    a, b = _number(value), _number(ref)
    if a is not None and b is not None:
        return [(key, a, b)]
    if isinstance(value, Mapping) and isinstance(ref, Mapping):
        common = [k for k in ref if k in value]
        if common:
            return [p for k in common for p in _pairs(value[k], ref[k], str(k))]
        value, ref = list(value.values()), list(ref.values())
    elif isinstance(value, Mapping):
        value = list(value.values())
    elif isinstance(ref, Mapping):
        ref = list(ref.values())
    va, vb = _seq(value), _seq(ref)
    if va is None or vb is None or len(va) != len(vb):
        return []
    return [p for x, y in zip(va, vb, strict=True) for p in _pairs(x, y, key)]


def relative_error(value: Any, ref: Any) -> float | None:
    """Largest normwise relative error over the groups of aligned numbers, or None."""
    groups: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for key, a, b in _pairs(value, ref):
        groups[key].append((a, b))
    worst: float | None = None
    for group in groups.values():
        scale = max(abs(b) for _, b in group)
        diff = max(abs(a - b) for a, b in group)
        err = diff / scale if scale > 0 else diff
        worst = err if worst is None else max(worst, err)
    return worst


def aligned(value: Any, ref: Any) -> int:
    """How many numbers were compared."""
    return len(_pairs(value, ref))


__all__ = ["SKIPPED", "aligned", "relative_error"]
