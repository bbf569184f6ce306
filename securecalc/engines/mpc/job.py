"""What an MPC worker is asked to do, and what it reports: pure, picklable dataclasses.

Nothing here imports mpyc, so the node process can build jobs and read results freely.

A job is a sequence of *steps*. Every party runs the same steps in the same order with the
same public parameters (kind, name, vector length, bound); only the values differ. The
workers check this agreement at start-up by exchanging a digest of :meth:`MpcJob.public_spec`.
To add a step kind, write a frozen dataclass with ``kind``, ``name``, ``check_inputs()`` and
``public_spec()`` (see :class:`Step`) and register how it runs in ``steps.py``.
"""

from __future__ import annotations

import hashlib
import math
import operator
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

from securecalc.errors import ConfigError, DataError

MIN_PARTIES = 3
"""Fewest parties we run with. MPyC's honest-majority threshold is ``t = (m - 1) // 2``; for
``m = 2`` that is ``t = 0``: a Shamir "share" of degree 0 is the secret itself, so each party
would send its plain inputs to the other. No sound two-party mode exists in this engine."""

_DIGEST_VERSION = "securecalc-mpc/1"


@runtime_checkable
class Step(Protocol):
    """One unit of a job: every party inputs local values; an agreed output is released."""

    kind: ClassVar[str]
    name: str

    def check_inputs(self) -> None:
        """Raise :class:`DataError` unless this party's local inputs are admissible."""

    def public_spec(self) -> tuple[object, ...]:
        """Parameters every party must agree on (never the values themselves)."""


@dataclass(frozen=True)
class SumStep:
    """Element-wise sum over parties of one integer vector per party.

    Every party inputs ``values`` (the same length at every party) with ``|v| <= bound``;
    the released output is the vector of totals. Reveals the totals and nothing else
    (given that each party knows its own input, a party learns the others' total).
    """

    name: str
    values: tuple[int, ...]
    bound: int
    kind: ClassVar[str] = "sum"

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("a step needs a non-empty name", field="name")
        if not isinstance(self.bound, int) or isinstance(self.bound, bool) or self.bound < 1:
            raise ConfigError(f"step {self.name!r}: bound must be an int >= 1", field="bound")

    def check_inputs(self) -> None:
        for i, v in enumerate(self.values):
            x = None if isinstance(v, bool) else _as_int(v)
            if x is None:
                raise DataError(f"step {self.name!r}: value #{i} is not an integer")
            if abs(x) > self.bound:
                raise DataError(
                    f"step {self.name!r}: value #{i} is outside the declared bound "
                    f"[-{self.bound}, {self.bound}]"
                )

    def int_values(self) -> list[int]:
        """The values as Python ints (after :meth:`check_inputs`)."""
        return [operator.index(v) for v in self.values]

    def public_spec(self) -> tuple[object, ...]:
        return (self.kind, self.name, len(self.values), self.bound)


def _as_int(v: object) -> int | None:
    try:
        return operator.index(v)  # type: ignore[arg-type]
    except TypeError:
        return None


def sum_bit_length(bound: int, m: int) -> int:
    """Bit length ``l`` of the secure integers for a sum over ``m`` values in ``[-bound, bound]``.

    ``SecInt(l)`` holds ``[-2**(l-1), 2**(l-1))`` and ``|total| <= m * bound``: one bit for the
    sign and one bit of margin on top of the magnitude. (MPyC's prime has about ``l + 32``
    bits, so a total could not wrap even without the margin.)
    """
    return (m * bound).bit_length() + 2


@dataclass(frozen=True)
class MpcJob:
    """One party's part of an MPC job.

    ``pid`` indexes ``party_names``; all parties use the same ``job_id``, names and steps.
    Timeouts are in seconds: ``peer_timeout`` bounds how long the worker waits for a message
    from a peer that shows no sign of life (it must exceed the longest local computation
    between two messages); ``setup_timeout`` is the same allowance while waiting for the
    peers' workers to start; ``job_timeout`` bounds the whole job.
    """

    job_id: str
    pid: int
    party_names: tuple[str, ...]
    steps: tuple[Step, ...]
    peer_timeout: float = 15.0
    job_timeout: float = 300.0
    setup_timeout: float = 60.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "party_names", tuple(self.party_names))
        object.__setattr__(self, "steps", tuple(self.steps))
        self.validate()

    @property
    def m(self) -> int:
        return len(self.party_names)

    @property
    def threshold(self) -> int:
        """Shamir threshold ``t``: any ``t`` parties together learn nothing beyond the output."""
        return (self.m - 1) // 2

    @property
    def peers(self) -> tuple[int, ...]:
        return tuple(p for p in range(self.m) if p != self.pid)

    def party_name(self, pid: int | None) -> str:
        if pid is not None and 0 <= pid < self.m:
            return self.party_names[pid]
        return f"#{pid}"

    def validate(self) -> None:
        """Raise :class:`ConfigError` unless the job is well formed (inputs are not checked)."""
        if not isinstance(self.job_id, str) or not self.job_id:
            raise ConfigError("job_id must be a non-empty string", field="job_id")
        if self.m < MIN_PARTIES:
            raise ConfigError(
                f"MPC needs at least {MIN_PARTIES} parties, got {self.m}: with m=2 the "
                "honest-majority threshold t=(m-1)//2 is 0, and Shamir sharing with t=0 sends "
                "each party's plain inputs to the others",
                field="party_names",
            )
        if len(set(self.party_names)) != self.m or not all(
            isinstance(n, str) and n for n in self.party_names
        ):
            raise ConfigError("party names must be distinct non-empty strings", field="party_names")
        if not isinstance(self.pid, int) or not 0 <= self.pid < self.m:
            raise ConfigError(f"pid must be in 0..{self.m - 1}", field="pid")
        for step in self.steps:
            if not isinstance(step, Step):
                raise ConfigError(f"unsupported step {step!r}", field="steps")
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ConfigError("step names must be distinct", field="steps")
        for fld in ("peer_timeout", "job_timeout", "setup_timeout"):
            value = getattr(self, fld)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ConfigError("must be a positive number of seconds", field=fld)

    def check_inputs(self) -> None:
        """Raise :class:`DataError` unless every local input of every step is admissible."""
        for step in self.steps:
            step.check_inputs()

    def public_spec(self) -> tuple[object, ...]:
        """Everything all parties must agree on: id, parties, steps (never the values)."""
        return (
            _DIGEST_VERSION,
            self.job_id,
            self.party_names,
            tuple(s.public_spec() for s in self.steps),
        )

    def digest(self) -> bytes:
        """SHA-256 of :meth:`public_spec`; exchanged at setup so mismatched jobs fail fast."""
        return hashlib.sha256(repr(self.public_spec()).encode()).digest()


@dataclass(frozen=True)
class StepResult:
    """Released output of one step and what it cost this party.

    ``rounds`` is measured by the transport (see ``session.Session``): the increase, during
    the step, of the highest round number seen on frames sent or received.
    """

    name: str
    totals: tuple[int, ...]
    seconds: float
    bytes_sent: int
    rounds: int


@dataclass(frozen=True)
class JobResult:
    """All step results plus costs of the whole job for this party.

    ``bytes_sent`` and ``rounds`` cover everything: setup handshake, steps, final
    synchronisation. ``setup_*`` are the handshake's share (PRSS key exchange).
    """

    steps: tuple[StepResult, ...]
    setup_seconds: float
    bytes_sent: int
    rounds: int
    setup_bytes: int = 0
    setup_rounds: int = 0

    def totals(self, name: str) -> tuple[int, ...]:
        """Totals of the step called ``name``."""
        for s in self.steps:
            if s.name == name:
                return s.totals
        raise KeyError(name)


__all__ = [
    "MIN_PARTIES",
    "JobResult",
    "MpcJob",
    "Step",
    "StepResult",
    "SumStep",
    "sum_bit_length",
]
