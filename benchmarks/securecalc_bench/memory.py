"""Peak memory of processes, from Linux's /proc (VmHWM: the peak resident set size).

``reset_peak`` writes 5 to ``/proc/<pid>/clear_refs``, which resets VmHWM to the current RSS,
so a node's peak can be taken per measurement. MPC workers live shorter than a study; a
:class:`ChildSampler` reads the peaks of the nodes' spawned workers every ``interval``
seconds while a study runs (growth in a worker's last interval before it exits is missed).
Where /proc is not available every figure is None.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")


def reset_peak(pid: int | str) -> None:
    try:
        (PROC / str(pid) / "clear_refs").write_text("5")
    except OSError:
        pass


def peak_mb(pid: int | str) -> float | None:
    """VmHWM of ``pid`` in MiB, or None."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _is_worker(pid: int) -> bool:
    """A spawned multiprocessing worker (a child caught between fork and exec still shows its
    parent's command line and memory, and the resource tracker is not a worker)."""
    try:
        return b"spawn_main" in (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (created by any of its threads)."""
    found: list[int] = []
    try:
        for task in (PROC / str(pid) / "task").iterdir():
            try:
                found += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    except OSError:
        return []
    return found


class ChildSampler:
    """Largest VmHWM seen among the children of ``parents`` while running (a context)."""

    def __init__(self, parents: Iterable[int], interval: float = 0.1):
        self.parents = list(parents)
        self.interval = interval
        self.peak: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-mem")

    def sample(self) -> None:
        """Read the children's peaks now."""
        for parent in self.parents:
            for child in children(parent):
                if not _is_worker(child):
                    continue
                mb = peak_mb(child)
                if mb is not None and (self.peak is None or mb > self.peak):
                    self.peak = mb

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> ChildSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


__all__ = ["ChildSampler", "children", "peak_mb", "reset_peak"]
