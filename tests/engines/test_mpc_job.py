"""Pure parts of the MPC engine: job validation, bit lengths, frames, error mapping."""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from securecalc.engines.mpc import MpcJob, SumStep, failure_error, frames, sum_bit_length
from securecalc.errors import (
    ConfigError,
    DataError,
    PartyError,
    ProtocolError,
    SecureCalcError,
)

NAMES = ("alpha", "beta", "gamma")


def job(pid: int = 0, names: tuple[str, ...] = NAMES, **kw: object) -> MpcJob:
    steps = kw.pop("steps", (SumStep("s", (1, -2, 3), 10),))
    return MpcJob("job-1", pid, names, steps, **kw)  # type: ignore[arg-type]


@pytest.mark.timeout(10)
def test_two_parties_refused_with_reason() -> None:
    with pytest.raises(ConfigError, match=r"at least 3 parties.*t=\(m-1\)//2 is 0"):
        job(names=("a", "b"))


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"pid": 3}, "pid"),
        ({"names": ("a", "a", "b")}, "party_names"),
        ({"steps": (SumStep("s", (), 1), SumStep("s", (), 1))}, "steps"),
        ({"steps": ("not a step",)}, "steps"),
        ({"peer_timeout": 0}, "peer_timeout"),
        ({"job_timeout": float("inf")}, "job_timeout"),
    ],
)
def test_malformed_jobs_are_config_errors(kw: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        job(**kw)  # type: ignore[arg-type]
    assert err.value.field == field


@pytest.mark.timeout(10)
@pytest.mark.parametrize("bound", [0, -1, True, 2.0])
def test_bound_must_be_positive_int(bound: object) -> None:
    with pytest.raises(ConfigError):
        SumStep("s", (0,), bound)  # type: ignore[arg-type]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("bad", [11, -11, 2.0, True, "3", None])
def test_inputs_checked_against_bound_and_type(bad: object) -> None:
    step = SumStep("s", (0, bad, 1), 10)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="value #1") as err:
        step.check_inputs()
    assert str(bad) not in str(err.value).replace("#1", "")  # the value itself is not echoed


@pytest.mark.timeout(10)
def test_numpy_integers_and_bounds_are_admissible() -> None:
    step = SumStep("s", np.array([10, -10, 0], dtype=np.int64), 10)  # type: ignore[arg-type]
    step.check_inputs()
    assert step.int_values() == [10, -10, 0]
    assert all(type(v) is int for v in step.int_values())


@pytest.mark.timeout(20)
@given(bound=st.integers(1, 2**300), m=st.integers(3, 50))
def test_bit_length_holds_every_total(bound: int, m: int) -> None:
    length = sum_bit_length(bound, m)
    assert m * bound < 2 ** (length - 2)  # a margin bit beyond sign and magnitude
    assert -(m * bound) >= -(2 ** (length - 1))


@pytest.mark.timeout(10)
def test_digest_covers_public_parameters_only() -> None:
    base = job().digest()
    assert job(pid=1).digest() == base
    assert job(steps=(SumStep("s", (7, 7, 7), 10),)).digest() == base  # values are private
    assert job(steps=(SumStep("s", (1, 2), 10),)).digest() != base  # length
    assert job(steps=(SumStep("s", (1, 2, 3), 11),)).digest() != base  # bound
    assert MpcJob("job-2", 0, NAMES, job().steps).digest() != base
    assert job(names=("alpha", "gamma", "beta")).digest() != base


@pytest.mark.timeout(10)
def test_job_pickles() -> None:
    j = job(peer_timeout=3.0)
    assert pickle.loads(pickle.dumps(j)) == j


@pytest.mark.timeout(10)
def test_failure_mapping() -> None:
    j = job()
    lost = failure_error(j, "party_lost", "gone", 2)
    assert isinstance(lost, PartyError) and lost.party == "gamma"
    slow = failure_error(j, "timeout", "slow", 1)
    assert isinstance(slow, PartyError) and slow.party == "beta"
    assert type(failure_error(j, "timeout", "slow", None)) is SecureCalcError
    assert isinstance(failure_error(j, "input", "x", None), DataError)
    assert isinstance(failure_error(j, "config", "x", None), ConfigError)
    assert isinstance(failure_error(j, "protocol", "x", 1), ProtocolError)
    assert type(failure_error(j, "internal", "x", None)) is SecureCalcError


@pytest.mark.timeout(10)
def test_an_internal_failure_keeps_its_text_in_the_node_log(
        caplog: pytest.LogCaptureFixture) -> None:
    """An exception's text may quote the node's data: it is logged, never passed on."""
    with caplog.at_level(logging.ERROR):
        error = failure_error(job(), "internal", "ValueError: cannot use 57.25", None)
    assert "57.25" not in str(error) and "details are in this node's log" in str(error)
    assert "57.25" in caplog.text


frame_st = st.one_of(
    st.builds(frames.Hello, st.integers(0, 2**32 - 1), st.integers(0, 2**16 - 1),
              st.binary(min_size=32, max_size=32),
              st.integers(0, 4).map(lambda n: bytes(range(16 * n)))),
    st.builds(frames.Data, st.integers(0, 2**32 - 1), st.integers(-(2**63), 2**63 - 1),
              st.binary(max_size=64)),
    st.builds(frames.Bye, st.integers(0, 2**32 - 1)),
    st.builds(frames.Abort, st.integers(0, 2**32 - 1), st.integers(0, 255),
              st.one_of(st.none(), st.integers(0, 2**16 - 2))),
)


@pytest.mark.timeout(30)
@given(frame_st)
def test_frames_round_trip(frame: frames.Frame) -> None:
    assert frames.decode(frames.encode(frame)) == frame


@pytest.mark.timeout(30)
@given(st.binary(max_size=80))
def test_garbage_is_a_frame_error_or_a_frame(data: bytes) -> None:
    try:
        frame = frames.decode(data)
    except frames.FrameError:
        return
    assert frames.encode(frame) == data


@pytest.mark.timeout(60)
def test_node_side_never_imports_mpyc() -> None:
    code = (
        "import sys\n"
        "import securecalc.engines.mpc as m, securecalc.engines.mpc.local\n"
        "import securecalc.engines.mpc.worker, securecalc.engines.mpc.session\n"
        "assert 'mpyc' not in sys.modules, sorted(k for k in sys.modules if 'mpyc' in k)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=50)
