"""A job: one run of a study's analyses, as every party receives it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from securecalc.core.analyses import Analysis
from securecalc.core.defaults import MIN_CELL_COUNT, MIN_COHORT
from securecalc.core.kinds import StudyOptions, kind_of
from securecalc.core.party import Party
from securecalc.core.plans import Gates, Plan, SumPlan
from securecalc.core.privacy import NoisePlan, exact, noise_plan, widened
from securecalc.core.schema import Schema
from securecalc.core.where import parse_where
from securecalc.errors import ConfigError


@dataclass(frozen=True)
class Job:
    study: str
    job_id: str
    parties: tuple[Party, ...]
    schema: Schema
    analyses: tuple[Analysis, ...]
    min_cell_count: int = MIN_CELL_COUNT
    min_cohort: int = MIN_COHORT

    @property
    def options(self) -> StudyOptions:
        return StudyOptions(min_cell_count=self.min_cell_count, min_cohort=self.min_cohort)

    def release_gates(self, plans: Sequence[Plan]) -> list[Gates]:
        """Per analysis (with its plan from :meth:`plans`), the slots that must reach
        ``min_cohort`` and those that must be 0 or reach ``min_cell_count`` for it to be
        released."""
        return [kind_of(a.kind).gates(a, self.schema, plan, self.options)
                for a, plan in zip(self.analyses, plans, strict=True)]

    def plans(self, engine: str) -> list[Plan]:
        """Every analysis's plan on ``engine``: public, so every party derives the same.

        A differentially private analysis's plan has room for the sites' noise shares."""
        return [plan for plan, _ in self.plans_and_noise(engine)]

    def noise_plans(self, engine: str) -> list[NoisePlan | None]:
        """Per analysis, the noise each site adds (None: released exactly)."""
        return [noise for _, noise in self.plans_and_noise(engine)]

    def plans_and_noise(self, engine: str) -> list[tuple[Plan, NoisePlan | None]]:
        """Per analysis, its plan (as :meth:`plans`) and its noise (as :meth:`noise_plans`)."""
        plans = self._exact_plans(engine)
        return [(widened(plan, noise) if isinstance(plan, SumPlan) and noise else plan, noise)
                for plan, noise in zip(plans, self._noise(plans), strict=True)]

    def _exact_plans(self, engine: str) -> list[Plan]:
        return [kind_of(a.kind).plan(a, self.schema, engine, self.options)
                for a in self.analyses]

    def _noise(self, plans: Sequence[Plan]) -> list[NoisePlan | None]:
        out: list[NoisePlan | None] = []
        for analysis, plan in zip(self.analyses, plans, strict=True):
            row_slots = kind_of(analysis.kind).dp_row_slots
            if analysis.epsilon is None:
                out.append(None)
            elif not isinstance(plan, SumPlan) or row_slots is None:
                raise ConfigError(f"analysis {analysis.id!r}: kind {analysis.kind!r} cannot "
                                  "be released with differential privacy")
            else:
                out.append(noise_plan(plan, analysis.epsilon, row_slots))
        return out

    @property
    def epsilon(self) -> float:
        """The privacy budget one run of this job spends: the sum over its analyses."""
        return float(sum((exact(a.epsilon) for a in self.analyses if a.epsilon is not None),
                         Fraction(0)))

    def party_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parties)

    def index_of(self, name: str) -> int:
        """Position of ``name`` among the parties (its MPyC party id)."""
        names = self.party_names()
        if name not in names:
            raise ConfigError(f"{name!r} is not a party of job {self.job_id} "
                              f"(parties: {', '.join(names)})")
        return names.index(name)

    def columns(self) -> list[str]:
        """Every column any analysis reads, including those its filter reads."""
        needed: set[str] = set()
        for analysis in self.analyses:
            needed.update(kind_of(analysis.kind).columns(
                {**analysis.options, "column": analysis.column}))
            needed.update(parse_where(analysis.where, self.schema).columns)
        return sorted(needed)

