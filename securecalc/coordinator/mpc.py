"""Running a job with the MPC engine: every node computes, only released totals come back."""

from __future__ import annotations

import time
from dataclasses import replace

from securecalc.coordinator.clock import StudyClock
from securecalc.core.config import StudyConfig
from securecalc.core.job import Job
from securecalc.core.release import result_of
from securecalc.core.results import AnalysisResult, Cost, StudyResult
from securecalc.engines.mpc.adapter import released_from
from securecalc.errors import ProtocolError
from securecalc.transport.interface import MpcReply, MpcRequest, StudyNetwork


def run_mpc(config: StudyConfig, job: Job, network: StudyNetwork,
            clock: StudyClock) -> StudyResult:
    started = time.perf_counter()
    clock.enter("connecting to the parties")
    network.check(job.parties)
    clock.enter("MPC job")
    replies = network.run_mpc(job.parties, MpcRequest(job, config.peer_timeout_seconds))
    secure_done = time.perf_counter()
    clock.enter("finishing")
    result = _release(config, job, replies, started)
    finishing = time.perf_counter() - secure_done
    return replace(result, phases={**result.phases, "finishing": finishing})


def _release(config: StudyConfig, job: Job, replies: dict[str, MpcReply],
             started: float) -> StudyResult:
    reference = next(iter(replies.values()))
    for name, reply in replies.items():  # every node must have seen the same released totals
        if [list(s.totals) for s in reply.steps] != [list(s.totals) for s in reference.steps]:
            raise ProtocolError(f"nodes disagree on the released totals ({name})")
    if [s.analysis_id for s in reference.steps] != [a.id for a in job.analyses]:
        raise ProtocolError("nodes returned results for other analyses")
    results = {}
    plans = job.plans("mpc")
    gates = job.release_gates(plans)
    for index, (analysis, plan) in enumerate(zip(job.analyses, plans, strict=True)):
        steps = [reply.steps[index] for reply in replies.values()]
        released = released_from(plan, list(reference.steps[index].totals),
                                 gates[index])
        value, n, note = result_of(analysis, job, released)
        cost = Cost(seconds=max(s.seconds for s in steps),
                    bytes_sent=sum(s.bytes_sent for s in steps),
                    rounds=max(s.rounds for s in steps))
        results[analysis.id] = AnalysisResult(analysis.id, analysis.kind, value, n, cost, note)
    replies_list = list(replies.values())
    total = Cost(seconds=time.perf_counter() - started,
                 bytes_sent=sum(r.bytes_sent for r in replies_list),
                 rounds=max(r.rounds for r in replies_list))
    phases = {"local": max(r.local_seconds for r in replies_list),
              "setup": max(r.setup_seconds for r in replies_list),
              # the steps run side by side, each timed from the common start
              "secure": max((s.seconds for r in replies_list for s in r.steps), default=0.0)}
    return StudyResult(study=config.name, engine="mpc", job_id=job.job_id, results=results,
                       cost=total, phases=phases,
                       heads=tuple(r.checkpoint_json for r in replies_list if r.checkpoint_json))
