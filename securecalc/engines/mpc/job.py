"""Compatibility re-exports: the step specifications moved to
:mod:`securecalc.engines.mpc.step_specs`, the worker's job and results to
:mod:`securecalc.engines.mpc.task`. Import from those."""

from securecalc.engines.mpc.step_specs import (
    MAX_SEARCH_POINTS,
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
    "MAX_SEARCH_POINTS",
    "MIN_PARTIES",
    "GatedSumStep",
    "IterativeStep",
    "JobResult",
    "MpcJob",
    "SearchStep",
    "Step",
    "StepResult",
    "SumStep",
    "SuppressedSumStep",
    "replay",
    "search_target",
    "sum_bit_length",
]
