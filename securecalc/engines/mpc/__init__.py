"""MPC engine: MPyC secret sharing in one worker process per job, messages relayed by the node.

The node process never imports mpyc. It builds an :class:`MpcJob`, starts a worker with
:func:`start_worker`, relays the worker's frames to and from the peer nodes, and gets a
:class:`JobResult` or a :class:`~securecalc.errors.SecureCalcError`. :func:`run_local` runs all
parties on one machine, for tests and benchmarks. Protocol details: ``worker.py`` (node <->
worker messages), ``frames.py`` (worker <-> worker frames), ``session.py`` (identity, rounds).
What each step computes: ``step_specs.py``; a party's job and results: ``task.py``; how
analyses become steps and releases become what kinds finish: ``adapter.py``.
"""

from securecalc.engines.mpc.launcher import WorkerHandle, failure_error, start_worker
from securecalc.engines.mpc.local import Fault, LocalOutcome, run_local, run_local_outcomes
from securecalc.engines.mpc.step_specs import (
    GatedSumStep,
    IterativeStep,
    SearchStep,
    Step,
    SumStep,
    SuppressedSumStep,
    replay,
    search_target,
    sum_bit_length,
)
from securecalc.engines.mpc.task import MIN_PARTIES, JobResult, MpcJob, StepResult

__all__ = [
    "MIN_PARTIES",
    "Fault",
    "GatedSumStep",
    "IterativeStep",
    "JobResult",
    "LocalOutcome",
    "MpcJob",
    "SearchStep",
    "Step",
    "StepResult",
    "SumStep",
    "SuppressedSumStep",
    "WorkerHandle",
    "failure_error",
    "replay",
    "run_local",
    "run_local_outcomes",
    "search_target",
    "start_worker",
    "sum_bit_length",
]
