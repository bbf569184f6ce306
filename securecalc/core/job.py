"""A job: one run of a study's analyses, as every party receives it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from securecalc.core.analyses import Analysis, check_analyses
from securecalc.core.config import MIN_PARTIES, Party
from securecalc.core.kinds import StudyOptions
from securecalc.core.limits import ANALYSES, NAME_CHARS, PARTIES, SCHEMA_COLUMNS
from securecalc.core.plans import Gates, Plan, SumPlan
from securecalc.core.privacy import NoisePlan, exact, noise_plan, widened
from securecalc.core.schema import Schema
from securecalc.errors import ConfigError


@dataclass(frozen=True)
class Job:
    study: str
    job_id: str
    parties: tuple[Party, ...]
    schema: Schema
    analyses: tuple[Analysis, ...]
    min_cell_count: int = 5
    min_cohort: int = 10

    @property
    def options(self) -> StudyOptions:
        return StudyOptions(min_cell_count=self.min_cell_count, min_cohort=self.min_cohort)

    def release_gates(self, plans: Sequence[Plan]) -> list[Gates]:
        """Per analysis (with its plan from :meth:`plans`), the slots that must reach
        ``min_cohort`` and those that must be 0 or reach ``min_cell_count`` for it to be
        released."""
        from securecalc.core.kinds import kind_of

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
        from securecalc.core.kinds import kind_of

        return [kind_of(a.kind).plan(a, self.schema, engine, self.options)
                for a in self.analyses]

    def _noise(self, plans: Sequence[Plan]) -> list[NoisePlan | None]:
        from securecalc.core.kinds import kind_of

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
        from securecalc.core.where import parse_where

        needed: set[str] = set()
        for analysis in self.analyses:
            needed.update(analysis.columns)
            needed.update(parse_where(analysis.where, self.schema).columns)
        return sorted(needed)

    def check(self, engine: str) -> None:
        """Validate a job received from the wire as carefully as a study file."""
        from securecalc.core.kinds import kind_of

        names = self.party_names()
        PARTIES.check(len(names), "parties")
        texts = {"study": self.study, "job_id": self.job_id}
        for i, party in enumerate(self.parties):
            texts |= {f"parties[{i}].name": party.name, f"parties[{i}].address": party.address}
        for key, text in texts.items():
            NAME_CHARS.check(len(text), key)
        ANALYSES.check(len(self.analyses), "analyses")
        SCHEMA_COLUMNS.check(len(self.schema.columns), "schema")
        if len(set(names)) != len(names):
            raise ConfigError(f"job {self.job_id}: party names are not unique")
        if len(names) < MIN_PARTIES[engine]:
            raise ConfigError(f"job {self.job_id}: engine {engine} needs at least "
                              f"{MIN_PARTIES[engine]} parties")
        if not self.analyses:
            raise ConfigError(f"job {self.job_id}: no analyses")
        if self.min_cell_count < 1:
            raise ConfigError(f"job {self.job_id}: min_cell_count must be at least 1")
        check_analyses(self.analyses, self.schema)
        for analysis in self.analyses:
            if engine not in kind_of(analysis.kind).engines:
                raise ConfigError(f"kind {analysis.kind!r} cannot run on the {engine} engine")
            kind_of(analysis.kind).check_engine(analysis, self.schema, engine)
