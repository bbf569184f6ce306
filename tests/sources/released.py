"""Comparing what two studies released, leaving out costs (timings, bytes) and identifiers."""

from __future__ import annotations

import math
from typing import Any

from securecalc.core.results import StudyResult


def released(result: StudyResult) -> dict[str, Any]:
    """Each analysis's kind, value, n and note: what the coordinator was given."""
    return {rid: {k: v for k, v in r.items() if k != "cost"}
            for rid, r in result.to_json()["results"].items()}


def assert_same_release(actual: Any, expected: Any, *, rel: float = 0.0,
                        where: str = "") -> None:
    """Equal structures; floats within ``rel`` relative difference (0: identical)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), where
        for key in expected:
            assert_same_release(actual[key], expected[key], rel=rel, where=f"{where}.{key}")
    elif isinstance(expected, list | tuple):
        assert isinstance(actual, list | tuple) and len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same_release(a, e, rel=rel, where=f"{where}[{i}]")
    elif isinstance(expected, float) and not isinstance(expected, bool):
        assert isinstance(actual, float | int), where
        assert actual == expected or math.isclose(actual, expected, rel_tol=rel,
                                                  abs_tol=rel), (where, actual, expected)
    else:
        assert actual == expected, (where, actual, expected)
