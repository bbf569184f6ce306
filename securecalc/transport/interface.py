"""How the roles reach each other: domain messages and the protocols a transport implements.

Nothing here imports grpc or protobuf. The roles (``securecalc.node``, ``securecalc.compute``,
``securecalc.coordinator``) speak only these types; ``transport`` implements them over gRPC
with mutual TLS (:mod:`securecalc.transport.grpc_network` and the servicers), and
:mod:`securecalc.transport.memory` routes them between role objects in one process (tests).

A transport authenticates every call and hands the role a :class:`Caller`: the name and role
its certificate states, its certificate, and the callee's key pins. No Caller exists whose
certificate's key differs from the pin of its name (checked when it is built, before any
message is read). The role decides whether that caller may make the call
(:meth:`Caller.require`: name, role, and a pin for every hospital). A refusal is
:class:`CallerRefused`, which reaches the caller as ``PartyError(<callee>, "refused: ...")``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from securecalc.core.config import Party
from securecalc.core.job import Job
from securecalc.core.pins import PIN_COMMAND
from securecalc.engines.ckks.layout import CkksParams, Layout
from securecalc.errors import CryptoError, SecureCalcError, StudyTimeout
from securecalc.pins import pem_pin
from securecalc.roles import Role
from securecalc.transport.tls import TlsFiles

#: what the coordinator allows past the deadline for a call's end to reach it
GRACE_SECONDS = 0.5
#: the longest a node lets one job run, whatever its caller's deadline
MAX_JOB_SECONDS = 3600.0
NOT_YET = "the job has not reached this node yet"
"""Why a node refuses an MPC stream that came before its job: the sender tries again."""


class CallerRefused(SecureCalcError):
    """The caller may not make this call (its name or role); the callee is named by the
    transport on the caller's side."""


class NotYet(SecureCalcError):
    """An MPC stream for a job this node has not received yet: the sender tries again."""

    def __init__(self) -> None:
        super().__init__(NOT_YET)


@dataclass(frozen=True)
class Caller:
    """The authenticated party making a call: its certificate's name and stated role.

    ``role`` is None in insecure (development) mode, where names are claimed and roles
    cannot be proven; ``certificate`` is the caller's PEM certificate (None without TLS);
    ``pins`` the callee's key pins (name -> ``sha256:...``, from its own configuration).
    """

    name: str
    role: Role | None
    certificate: bytes | None = None
    pins: Mapping[str, str] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        """The pinning invariant, checked when the transport builds the caller (before any
        message is read): a certificate whose name is pinned carries that key. Nothing to
        check without a certificate (insecure mode, or roles wired in one process)."""
        if self.certificate is None:
            return
        pinned = (self.pins or {}).get(self.name)
        if pinned is None:
            return
        try:
            presented = pem_pin(self.certificate)
        except CryptoError:
            presented = None
        if presented != pinned:
            raise CallerRefused(f"the certificate of {self.name} does not carry the key pinned "
                                f"for {self.name} in this party's configuration")

    def require(self, allowed: Collection[str], role: Role) -> str:
        """This caller's name if it is one of ``allowed`` with ``role`` (and, for a hospital,
        pinned); CallerRefused otherwise (insecure: the name only)."""
        if self.certificate is not None and Role.HOSPITAL in (role, self.role) \
                and self.name not in (self.pins or {}):
            raise CallerRefused(
                f"{self.name} has no key pin in this party's configuration; every hospital "
                f"must be pinned ([pins] \"{self.name}\" = the output of {PIN_COMMAND})")
        if self.role is not None and self.role != role:
            raise CallerRefused(f"the certificate of {self.name} is a {self.role} certificate; "
                                f"only a {role} may make this call")
        if self.name not in allowed:
            what = "certificate" if self.role is not None else "x-securecalc-party header"
            raise CallerRefused(f"{what} names {self.name}, which is not a party of this job")
        return self.name


class CallContext(Protocol):
    """What a role needs of the call it serves: its deadline and its end."""

    def time_remaining(self) -> float | None:
        """Seconds before the caller's deadline (None: no deadline)."""

    def on_end(self, callback: Callable[[], None]) -> bool:
        """Run ``callback`` when the call ends (cancelled, deadline, done); False if it
        already ended (the callback is then not run)."""

    def is_active(self) -> bool:
        """Whether the caller is still waiting."""


def remaining(context: CallContext) -> float:
    """Seconds left before the caller's deadline (at least 1, at most MAX_JOB_SECONDS)."""
    left = context.time_remaining()
    return MAX_JOB_SECONDS if left is None else max(1.0, min(left, MAX_JOB_SECONDS))


# --- hospital node: what the coordinator asks of it ------------------------------------------

@dataclass(frozen=True)
class MpcRequest:
    job: Job
    peer_timeout_seconds: float = 15.0


@dataclass(frozen=True)
class StepOutcome:
    """One analysis's released totals at one node and what computing them cost."""

    analysis_id: str
    totals: tuple[int, ...]
    seconds: float
    bytes_sent: int
    rounds: int


@dataclass(frozen=True)
class MpcReply:
    checkpoint_json: str
    steps: tuple[StepOutcome, ...]
    local_seconds: float
    setup_seconds: float
    bytes_sent: int
    rounds: int


@dataclass(frozen=True)
class CkksRequest:
    """A CKKS aggregation job for one site: encrypt under ``public_context`` and submit to
    the compute node; ``states``: the public state of iterative analyses."""

    job: Job
    compute: Party
    params: CkksParams
    n_values: int
    public_context: bytes
    states: Mapping[str, Any] = field(default_factory=dict)
    peer_timeout_seconds: float = 15.0


@dataclass(frozen=True)
class CkksReply:
    checkpoint_json: str
    bytes_sent: int
    ciphertexts: int
    local_seconds: float
    encrypt_seconds: float


@dataclass(frozen=True)
class ReleaseOutcome:
    """What was released of one analysis: a status, a note and a digest (never a value)."""

    analysis_id: str
    status: str
    note: str
    digest: str


@dataclass(frozen=True)
class HeadsRequest:
    job_id: str
    checkpoint_json: tuple[str, ...]
    outcomes: tuple[ReleaseOutcome, ...]


# --- compute node: what the coordinator asks of it -------------------------------------------

@dataclass(frozen=True)
class OpenJob:
    job_id: str
    sites: tuple[str, ...]
    layout: Layout
    params_context: bytes
    #: seconds the job may stay open (the study's remaining time; 0: the compute node's
    #: default); the compute node caps it
    lifetime_seconds: float = 0.0


@dataclass(frozen=True)
class Submission:
    """One site's ciphertexts for a job, with its signature over them (empty without TLS)."""

    job_id: str
    ciphertexts: tuple[bytes, ...]
    signature: bytes = b""


# --- protocols --------------------------------------------------------------------------------

class StudyClockLike(Protocol):
    """The study's deadline as the transport needs it (see coordinator.clock.StudyClock)."""

    peer_timeout: float
    phase: str

    def left(self) -> float: ...

    def remaining(self, at_most: float | None = None) -> float: ...

    @property
    def over(self) -> bool: ...

    def expired(self, waiting_for: str | None = None) -> StudyTimeout: ...


class StudyNetwork(Protocol):
    """What a coordinator calls on the other parties during one study.

    Fan-out calls go to every party at once and fail as soon as one fails, naming that party
    (or the party it reports lost, or one found silent while the calls run); each takes its
    deadline from the study's clock. Prompt calls answer within ``peer_timeout_seconds``.
    Use as a context manager: connections are made once per study.
    """

    def check(self, parties: Sequence[Party]) -> None:
        """Every party answers promptly: one refused, unreachable or frozen is named."""

    def run_mpc(self, parties: Sequence[Party], request: MpcRequest) -> dict[str, MpcReply]:
        """Run the MPC job at every hospital."""

    def run_ckks(self, parties: Sequence[Party],
                 request: CkksRequest) -> dict[str, CkksReply]:
        """Have every site encrypt and submit its part (the compute node is watched too)."""

    def store_heads(self, parties: Sequence[Party], request: HeadsRequest) -> None:
        """Hand every hospital the audit heads and release outcomes."""

    def open_job(self, compute: Party, request: OpenJob) -> None: ...

    def fetch_sum(self, compute: Party, job_id: str, layout: Layout) -> list[bytes]:
        """The encrypted sum over every site, once all contributed."""

    def checkpoint(self, compute: Party, job_id: str) -> str:
        """The compute node's signed audit head."""

    def close_job(self, compute: Party, job_id: str) -> None:
        """Best effort: the compute node forgets a job whose sum will not be fetched."""

    def __enter__(self) -> StudyNetwork: ...

    def __exit__(self, *exc: object) -> None: ...


class Connect(Protocol):
    """Opens a coordinator's :class:`StudyNetwork` for one study."""

    def __call__(self, tls: TlsFiles | None, clock: StudyClockLike) -> StudyNetwork: ...


class PeerLink(Protocol):
    """One MPC node's connection to one peer node for one job's frames."""

    def stream(self, job_id: str, frames: Callable[[], Iterator[bytes]], *, timeout: float,
               closing: threading.Event) -> str | None:
        """Relay ``frames()`` (called once the peer accepts the stream) until it ends. While
        the peer has not received the job it refuses at once and this tries again shortly,
        until ``closing`` is set. None when done or cancelled, else why the stream broke."""

    def confirm(self, job_id: str, digest: str, *, timeout: float) -> bool | None:
        """Tell the peer this node holds ``job_id`` with the canonical ``digest``: True when
        the peer holds the same job, None while it is still admitting the job.
        :class:`NotYet` while the peer has not received it; another :class:`SecureCalcError`
        when the peer refuses or cannot be reached."""

    def close(self) -> None: ...


class PeerLinks(Protocol):
    """Opens a node's links to its MPC peers."""

    #: seconds of one-way latency added to every outgoing frame: 0, except under the
    #: development hooks of :mod:`securecalc.transport.devhooks` (an emulated WAN)
    frame_delay: float

    def open(self, peer: Party) -> PeerLink: ...


class Inbound(Protocol):
    """An accepted MPC stream from one peer: where its frames go."""

    def deliver(self, data: bytes) -> None: ...

    def lost(self, reason: str) -> None: ...


class ComputeSubmitter(Protocol):
    """What a hospital node calls on the compute node: submit its ciphertexts."""

    def submit(self, compute: Party, submission: Submission, *, timeout: float,
               on_cancel: Callable[[Callable[[], None]], bool]) -> None:
        """Send ``submission``; ``on_cancel`` registers the cancellation of the submission
        for when the coordinator's call ends (False if it already ended)."""


__all__ = [
    "GRACE_SECONDS", "MAX_JOB_SECONDS", "NOT_YET", "CallContext", "Caller", "CallerRefused",
    "CkksReply", "CkksRequest", "ComputeSubmitter", "Connect", "HeadsRequest", "Inbound",
    "MpcReply", "MpcRequest", "NotYet", "OpenJob", "PeerLink", "PeerLinks", "ReleaseOutcome",
    "StepOutcome", "StudyClockLike", "StudyNetwork", "Submission", "remaining",
]
