"""The study's clock: one deadline for the whole run, reported with the phase it ran out in."""

from __future__ import annotations

import pytest

from securecalc.coordinator.clock import StudyClock
from securecalc.errors import StudyTimeout


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.timeout(5)
def test_calls_get_what_is_left_at_most_the_party_timeout() -> None:
    time = FakeTime()
    clock = StudyClock(10, 3, clock=time)
    assert clock.remaining() == 10 and clock.remaining(3) == 3
    time.now += 8.5
    assert clock.remaining() == 1.5 and clock.remaining(3) == 1.5 and not clock.over


@pytest.mark.timeout(5)
def test_running_out_names_the_phase() -> None:
    time = FakeTime()
    clock = StudyClock(1, 3, clock=time)
    clock.enter("MPC job")
    time.now += 1
    assert clock.over
    with pytest.raises(StudyTimeout, match=r"within timeout_seconds = 1 \(phase: MPC job\)$"):
        clock.remaining()
    with pytest.raises(StudyTimeout, match=r"\(phase: MPC job\)"):
        clock.enter("finishing")  # a phase that starts too late never starts
    assert "waiting for hospital-b" in str(clock.expired("hospital-b"))
