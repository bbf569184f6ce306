"""Shared settings of the fuzz targets: budget, expected exceptions and the memory bound.

The default budget keeps ``make test`` short and reproducible (``derandomize``); set
``SECURECALC_FUZZ_EXAMPLES`` for a longer run with fresh random cases::

    SECURECALC_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest tests/fuzz -q
"""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, event, settings

from securecalc.errors import SecureCalcError

T = TypeVar("T")

LONG_RUN = int(os.environ.get("SECURECALC_FUZZ_EXAMPLES", "0") or 0)
EXPECTED: tuple[type[BaseException], ...] = (SecureCalcError,)
EXPECTED_WIRE: tuple[type[BaseException], ...] = (SecureCalcError, DecodeError)
MiB = 1024 * 1024


def examples(default: int) -> int:
    """Cases per target: ``default``, or the long-run budget from the environment."""
    return LONG_RUN or default


def fuzz(default: int) -> Callable[[T], T]:
    """Hypothesis settings of one target: ``default`` cases, no deadline, reproducible
    unless a long run asks for fresh cases, and a per-test timeout that grows with it."""
    n = examples(default)
    chosen = settings(
        max_examples=n,
        deadline=None,
        derandomize=not LONG_RUN,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    timeout = pytest.mark.timeout(max(120, 120 * n // default))

    def decorate(test: T) -> T:
        return timeout(chosen(test))  # type: ignore[no-any-return]

    return decorate


def outcome(call: Callable[[], Any], expected: tuple[type[BaseException], ...] = EXPECTED
            ) -> Any:
    """``call()``, or the expected exception it raised; anything else fails the case."""
    try:
        result = call()
    except expected as exc:
        event(f"refused: {type(exc).__name__}")
        return exc
    event("accepted")
    return result


@contextmanager
def bounded_memory(limit: int) -> Iterator[None]:
    """Fail when the Python heap grows by more than ``limit`` bytes at its peak inside."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    try:
        yield
    finally:
        _, peak = tracemalloc.get_traced_memory()
        if started:
            tracemalloc.stop()
    assert peak - before <= limit, f"allocated {peak - before} bytes, bound {limit}"
