"""Compatibility: the compute node's start-up moved to :mod:`securecalc.wiring`."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "start_compute":
        from securecalc.wiring import start_compute

        return start_compute
    raise AttributeError(name)
