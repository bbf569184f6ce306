"""From what an engine released for an analysis to its result, the same for every engine.

Each engine's adapter decodes its released numbers into what the kind expects (or
:class:`Withheld`); :func:`result_of` then applies the kind's formula and notes.
"""

from __future__ import annotations

from typing import Any

from securecalc.core.analyses import Analysis
from securecalc.core.job import Job
from securecalc.core.kinds import kind_of
from securecalc.core.plans import Gates
from securecalc.core.privacy import describe

#: no gates
UNGATED = Gates()


class Withheld:
    """An analysis whose gates failed (a cohort below ``min_cohort`` or a cell below
    ``min_cell_count``): nothing was released."""


def result_of(analysis: Analysis, job: Job, released: Any) -> tuple[Any, int | None, str | None]:
    """``(value, n, note)`` of one analysis from what its engine released (decoded by the
    engine's adapter)."""
    kind = kind_of(analysis.kind)
    if isinstance(released, Withheld):
        return None, None, kind.withheld_note(analysis, job.options)
    value, n = kind.finish(analysis, job.schema, released, job.options)
    note = kind.release_note(analysis, job.schema, released, job.options)
    if analysis.epsilon is None:
        return value, n, note
    # the kinds that take epsilon have one SumPlan on every engine
    noise = job.noise_plans("mpc")[job.analyses.index(analysis)]
    assert noise is not None
    return value, n, describe(noise, len(job.parties))
