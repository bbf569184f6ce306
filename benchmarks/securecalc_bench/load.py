"""Other people's load on a shared machine: measured, waited out, and reported per cell.

From /proc/stat (all CPUs) and /proc/<pid>/stat (our own processes, with their reaped
children such as MPC workers) we get the CPU time spent by *others* while a cell ran, in
cores. Before a cell the bench waits (up to a limit) until the machine is quiet, since
nothing of ours runs between cells. Without /proc every figure is None.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
QUIET_CORES = 0.3
#: shortest window whose foreign load is reported
MIN_WINDOW = 0.5


def _machine_busy() -> float | None:
    """CPU seconds spent busy by the whole machine since boot."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    values = [int(x) for x in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / TICK


def _own(pids: Iterable[int | str]) -> float:
    """CPU seconds of ``pids`` and of their reaped children."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / TICK


class ForeignLoad:
    """Cores used by processes other than ``pids`` (and this one) between start and stop."""

    def __init__(self, pids: Iterable[int]):
        self.pids = [*pids, "self"]
        self.cores: float | None = None

    def __enter__(self) -> ForeignLoad:
        self._t0, self._busy0, self._own0 = time.monotonic(), _machine_busy(), _own(self.pids)
        return self

    def __exit__(self, *exc: object) -> None:
        busy = _machine_busy()
        wall = time.monotonic() - self._t0
        if busy is None or self._busy0 is None or wall < MIN_WINDOW:
            return  # CPU time is counted in clock ticks: too coarse for short windows
        foreign = (busy - self._busy0) - (_own(self.pids) - self._own0)
        self.cores = max(0.0, foreign / wall)


def wait_quiet(max_wait: float, window: float = 1.0) -> tuple[float | None, float]:
    """Wait until others use fewer than :data:`QUIET_CORES` cores over ``window`` seconds,
    at most ``max_wait`` seconds; return (last measured cores, seconds waited)."""
    started = time.monotonic()
    while True:
        with ForeignLoad([]) as load:
            time.sleep(window)
        waited = time.monotonic() - started
        if load.cores is None or load.cores < QUIET_CORES or waited >= max_wait:
            return load.cores, waited


__all__ = ["MIN_WINDOW", "QUIET_CORES", "ForeignLoad", "wait_quiet"]
