"""Running a job with the CKKS engine.

The coordinator makes a fresh key for the run, gives the hospitals the public context only,
gives the compute node a context with parameters and no key, and receives nothing but the
encrypted sum over all sites, which it decrypts. All analyses travel packed in the same
ciphertexts; an iterative analysis (logistic regression) needs further rounds, each a new
aggregation job carrying only the analyses still iterating and their public state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from securecalc.coordinator.clock import StudyClock
from securecalc.core.config import StudyConfig
from securecalc.core.job import Job
from securecalc.core.release import result_of
from securecalc.core.results import AnalysisResult, Cost, StudyResult
from securecalc.engines.ckks.adapter import CkksRounds, run_rounds
from securecalc.engines.ckks.context import KeyHolder
from securecalc.engines.ckks.layout import CkksParams, Layout
from securecalc.transport.interface import CkksRequest, OpenJob, StudyNetwork


@dataclass
class _Tally:
    bytes_sent: int = 0
    ciphertexts: int = 0
    rounds: int = 0
    phases: dict[str, float] = field(default_factory=dict)

    def add_phase(self, name: str, seconds: float) -> None:
        self.phases[name] = self.phases.get(name, 0.0) + seconds


class _Round:
    """One aggregation job: open it at the compute node, run it at every site, fetch the sum.

    Every round of a study uses the study's network (one connection per site and one to the
    compute node), so connections and TLS handshakes are made once per study, not per call."""

    def __init__(self, config: StudyConfig, network: StudyNetwork, holder: KeyHolder,
                 public_context: bytes, tally: _Tally, clock: StudyClock):
        self.config, self.network, self.holder = config, network, holder
        self.clock = clock
        self.public_context = public_context
        self.tally = tally
        self.heads: list[str] = []

    def run(self, job: Job, layout: Layout, states: dict[str, Any]) -> list[float]:
        compute = self.config.compute
        assert compute is not None
        clock, network = self.clock, self.network
        started = time.perf_counter()
        params_context = self.holder.params_context_bytes()
        clock.enter("CKKS open job")
        network.open_job(compute, OpenJob(job.job_id, tuple(job.party_names()), layout,
                                          params_context, lifetime_seconds=clock.left()))
        try:
            clock.enter("CKKS encrypt and submit")
            replies = network.run_ckks(job.parties, CkksRequest(
                job=job, compute=compute, params=layout.params, n_values=layout.n_values,
                public_context=self.public_context, states=states,
                peer_timeout_seconds=clock.peer_timeout))
            submitted = time.perf_counter()
            clock.enter("CKKS fetch")
            pieces = network.fetch_sum(compute, job.job_id, layout)
        except BaseException as exc:  # refused, a party lost, interrupted: nobody fetches it
            self._close(job.job_id, exc)
            raise
        self.heads = [r.checkpoint_json for r in replies.values() if r.checkpoint_json]
        compute_head = network.checkpoint(compute, job.job_id)
        if compute_head:
            self.heads.append(compute_head)
        fetched = time.perf_counter()  # "fetch": the sum and the compute node's checkpoint
        clock.enter("CKKS decrypt")
        values = release_rounding(self.holder.decrypt(pieces, layout),
                                  self.config.ckks_release_bits)
        tally = self.tally
        tally.rounds += 1
        tally.ciphertexts += layout.n_ciphertexts * (len(job.parties) + 1)
        tally.bytes_sent += (len(self.public_context) * len(job.parties) + len(params_context)
                             + sum(r.bytes_sent for r in replies.values())
                             + sum(len(p) for p in pieces))
        tally.add_phase("local", max(r.local_seconds for r in replies.values()))
        tally.add_phase("encrypt", max(r.encrypt_seconds for r in replies.values()))
        tally.add_phase("submit", submitted - started)
        tally.add_phase("fetch", fetched - submitted)
        tally.add_phase("decrypt", time.perf_counter() - fetched)
        return values

    def _close(self, job_id: str, error: BaseException) -> None:
        """Best effort: the compute node forgets a job whose sum will not be fetched, which
        would otherwise hold its slot and memory until it expires. Skipped when the compute
        node is the party at fault or the study is out of time (the deadline comes first)."""
        compute = self.config.compute
        assert compute is not None
        if self.clock.over or getattr(error, "party", None) == compute.name:
            return
        self.network.close_job(compute, job_id)


def release_rounding(values: list[float], bits: int) -> list[float]:
    """Each decrypted value rounded to a multiple of 2**-bits.

    Slots are normalised to the order of a row count (see core.encoding), so 20 bits keep
    about 1e-6 of a row, far below what any result needs, while the low-order bits that
    carry CKKS decryption noise (about 1e-11 at scale 2**50), and with it information about
    the secret key, never leave the coordinator.
    """
    step = 2.0**bits
    return [round(v * step) / step for v in values]


def run_ckks(config: StudyConfig, job: Job, network: StudyNetwork, clock: StudyClock,
             params: CkksParams | None = None) -> StudyResult:
    started = time.perf_counter()
    clock.enter("CKKS key generation")
    params = params or CkksParams()
    holder = KeyHolder.create(params, max_decryptions=CkksRounds(job).max_rounds)
    public_context = holder.public_context_bytes()
    tally = _Tally()
    tally.add_phase("keys", time.perf_counter() - started)
    rounds = _Round(config, network, holder, public_context, tally, clock)
    clock.enter("connecting to the parties")
    assert config.compute is not None
    network.check((*job.parties, config.compute))
    done = run_rounds(job, params, rounds.run)

    clock.enter("finishing")
    finish_started = time.perf_counter()
    results = {}
    total_width = sum(done.widths.values())
    for analysis in job.analyses:
        value, n, note = result_of(analysis, job, done.released[analysis.id])
        share = done.widths[analysis.id] / total_width
        cost = Cost(seconds=(finish_started - started) * share,
                    bytes_sent=round(tally.bytes_sent * share), ciphertexts=tally.ciphertexts)
        results[analysis.id] = AnalysisResult(analysis.id, analysis.kind, value, n, cost, note)
    tally.add_phase("finishing", time.perf_counter() - finish_started)
    return StudyResult(study=config.name, engine="ckks", job_id=job.job_id, results=results,
                       cost=Cost(seconds=time.perf_counter() - started,
                                 bytes_sent=tally.bytes_sent, ciphertexts=tally.ciphertexts),
                       phases=dict(tally.phases), heads=tuple(rounds.heads))
