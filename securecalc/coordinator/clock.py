"""The study's clock: ``timeout_seconds`` bounds the whole run, phase by phase.

The clock starts when ``run_study`` does. Every call takes its deadline from what is left (a
call that should answer promptly, at most ``peer_timeout_seconds``), every wait ends with the
study's deadline, and each phase starts by checking that time is left. When time runs out the
study fails with :class:`StudyTimeout` naming the phase it was in; a failure that comes after
the deadline passed is reported the same way, since the deadline is what ran out.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from securecalc.errors import StudyTimeout
from securecalc.transport.interface import GRACE_SECONDS


class StudyClock:
    """One study's deadline, its party timeout and the phase it is in."""

    def __init__(self, timeout_seconds: float, peer_timeout_seconds: float,
                 clock: Callable[[], float] = time.monotonic):
        self.timeout = timeout_seconds
        self.peer_timeout = peer_timeout_seconds
        self._clock = clock
        self.end = clock() + timeout_seconds
        self.phase = "start"

    def enter(self, phase: str) -> None:
        """Begin ``phase``; StudyTimeout if no time is left."""
        self.remaining()
        self.phase = phase

    def left(self) -> float:
        """Seconds before the deadline (negative once it passed)."""
        return self.end - self._clock()

    def remaining(self, at_most: float | None = None) -> float:
        """Seconds left for a call (at most ``at_most``); StudyTimeout if none are."""
        left = self.left()
        if left <= 0:
            raise self.expired()
        return left if at_most is None else min(left, at_most)

    @property
    def over(self) -> bool:
        return self.left() <= 0

    def expired(self, waiting_for: str | None = None) -> StudyTimeout:
        """The error of a study that ran out of time in the current phase."""
        who = f", waiting for {waiting_for}" if waiting_for else ""
        return StudyTimeout(f"the study did not finish within timeout_seconds = "
                            f"{self.timeout:g} (phase: {self.phase}{who})")


__all__ = ["GRACE_SECONDS", "StudyClock"]
