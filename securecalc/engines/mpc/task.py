"""What one party's MPC worker is given (:class:`MpcJob`: the job's steps, parties and
timeouts) and what it reports (:class:`JobResult`): pure, picklable dataclasses.

Nothing here imports mpyc. All parties use the same job id, names and steps; the workers
check this agreement at start-up by exchanging a digest of :meth:`MpcJob.public_spec`, which
binds the canonical job digest the hospitals confirmed before reading any row.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from securecalc.engines.mpc.step_specs import Step
from securecalc.errors import ConfigError

MIN_PARTIES = 3
"""Fewest parties we run with. MPyC's honest-majority threshold is ``t = (m - 1) // 2``; for
``m = 2`` that is ``t = 0``: a Shamir "share" of degree 0 is the secret itself, so each party
would send its plain inputs to the other. No sound two-party mode exists in this engine."""

_DIGEST_VERSION = "securecalc-mpc/1"


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
    #: the canonical digest of the job the hospitals agreed on (:mod:`securecalc.core.canonical`)
    job_digest: str = ""

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
            self.job_digest,
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


__all__ = ["MIN_PARTIES", "JobResult", "MpcJob", "StepResult"]
