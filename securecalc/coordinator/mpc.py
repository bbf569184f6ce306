"""Running a job with the MPC engine: every node computes, only released totals come back."""

from __future__ import annotations

import time
from dataclasses import replace

from securecalc.coordinator.calls import call_all, check_all
from securecalc.coordinator.clock import StudyClock
from securecalc.coordinator.release import finish, from_mpc
from securecalc.core.config import StudyConfig
from securecalc.core.job import Job
from securecalc.core.results import AnalysisResult, Cost, StudyResult
from securecalc.errors import ProtocolError
from securecalc.transport.channel import ChannelSet
from securecalc.transport.codec import job_to_proto
from securecalc.transport.liveness import Liveness
from securecalc.transport.proto import node_pb2, node_pb2_grpc
from securecalc.transport.tls import TlsFiles


def run_mpc(config: StudyConfig, job: Job, tls: TlsFiles | None,
            clock: StudyClock) -> StudyResult:
    started = time.perf_counter()
    request = node_pb2.MpcJobRequest(spec=job_to_proto(job),
                                     peer_timeout_seconds=config.peer_timeout_seconds)
    addresses = {p.name: p.address for p in job.parties}
    with ChannelSet(tls, own_name="coordinator" if tls is None else None) as channel_set:
        channels = {p.name: channel_set.get(p.name, p.address) for p in job.parties}
        clock.enter("connecting to the parties")
        check_all(channels, clock)
        clock.enter("MPC job")
        calls = {name: (lambda t, ch=ch: node_pb2_grpc.PartyNodeStub(ch).RunMpc.future(
                     request, timeout=t)) for name, ch in channels.items()}
        with Liveness(channels, config.peer_timeout_seconds) as liveness:
            replies: dict[str, node_pb2.MpcJobReply] = call_all(
                calls, addresses=addresses, clock=clock, liveness=liveness)
    secure_done = time.perf_counter()
    clock.enter("finishing")
    result = _release(config, job, replies, started)
    finishing = time.perf_counter() - secure_done
    return replace(result, phases={**result.phases, "finishing": finishing})


def _release(config: StudyConfig, job: Job, replies: dict[str, node_pb2.MpcJobReply],
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
        released = from_mpc(plan, [int(t) for t in reference.steps[index].totals],
                            gates[index])
        value, n, note = finish(analysis, job, released)
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
              "secure": sum(max(r.steps[i].seconds for r in replies_list)
                            for i in range(len(job.analyses)))}
    return StudyResult(study=config.name, engine="mpc", job_id=job.job_id, results=results,
                       cost=total, phases=phases,
                       heads=tuple(r.checkpoint_json for r in replies_list if r.checkpoint_json))
