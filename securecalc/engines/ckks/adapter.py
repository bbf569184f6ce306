"""How every plan shape runs on CKKS, both directions: a site's local inputs packed into one
vector of normalised values, and the decrypted sum back to what each analysis's kind
finishes, including the rounds of iterative analyses (:class:`CkksRounds`).

CKKS sums vectors of reals, so every shape it runs has a sum form: a :class:`SumPlan` is its
own, an :class:`IterativePlan` gives one per round from its public state. One entry per plan
shape in :data:`_SHAPES`; search plans have none (kinds give CKKS a SumPlan or an
iterative histogram instead). Nothing here touches keys or the network.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from securecalc.core.encoding import ckks_decode, ckks_encode
from securecalc.core.job import Job
from securecalc.core.local import LocalContribution
from securecalc.core.plans import Gates, IterativePlan, IterativeProgram, Plan, SumPlan
from securecalc.core.release import UNGATED, Withheld
from securecalc.engines.ckks.layout import CkksParams, Layout
from securecalc.errors import ProtocolError


@dataclass(frozen=True)
class _Shape:
    #: the sum plan of a round, given the analysis's public state (None for one-round plans)
    sum_form: Callable[[Any, Any], SumPlan]
    #: a site's values for that round, from its local input and the state
    round_input: Callable[[Any, Any, Any], Sequence[Any]]
    #: whether the plan runs rounds driven by a public state
    iterative: bool = False


_SHAPES: dict[type, _Shape] = {
    SumPlan: _Shape(sum_form=lambda plan, state: plan,
                    round_input=lambda plan, state, local: local),
    IterativePlan: _Shape(sum_form=lambda plan, state: plan.program.round_plan(state),
                          round_input=lambda plan, state, local: plan.program.local(state, local),
                          iterative=True),
}


def _shape_of(plan: Plan) -> _Shape:
    try:
        return _SHAPES[type(plan)]
    except KeyError:
        raise ProtocolError(f"no CKKS form for {type(plan).__name__}") from None


def sum_form(plan: Plan, state: Any = None) -> SumPlan:
    """The sum plan a round of ``plan`` packs, given the analysis's public ``state``."""
    return _shape_of(plan).sum_form(plan, state)


def is_iterative(plan: Plan) -> bool:
    """Whether ``plan`` runs rounds driven by a public state."""
    return _shape_of(plan).iterative


def initial_state(plan: Plan) -> Any:
    """The public state of ``plan``'s first round: None for one-round plans."""
    return _program(plan).initial_state() if is_iterative(plan) else None


def _program(plan: Plan) -> IterativeProgram:
    return cast(IterativePlan, plan).program


def site_vector(parts: Sequence[LocalContribution], states: Mapping[str, Any]) -> list[float]:
    """Every analysis's normalised values packed into one vector, in job order.

    ``states`` holds the public state of each iterative analysis for this round.
    """
    values: list[float] = []
    for part in parts:
        shape = _shape_of(part.plan)
        state = None
        if shape.iterative:
            if part.analysis.id not in states:
                raise ProtocolError("iterative analysis without its state")
            state = states[part.analysis.id]
        values += ckks_encode(shape.sum_form(part.plan, state),
                              shape.round_input(part.plan, state, part.local))
    return values


def released_from(plan: SumPlan, values: Sequence[float], gate: Gates = UNGATED,
                  min_cohort: int = 0) -> Any:
    """Decode decrypted values of a one-round plan; analyses whose gates fail and counts below
    the plan's threshold are withheld here, before anything is released (the coordinator is
    the only party that decrypts)."""
    totals = ckks_decode(plan, values)
    if not gate.passes(totals, min_cohort):
        return Withheld()
    if not plan.suppress_below:
        return tuple(totals)
    return tuple(t if t >= plan.suppress_below else None for t in totals)


class CkksRounds:
    """The coordinator's side of a CKKS job's rounds, without transport.

    Round 1 carries every analysis; each later round only the iterative analyses still
    running, with their public states. For each round: :meth:`round_job` (the job to send),
    :meth:`states` (the public states it carries), :meth:`n_values` (the packed vector's
    length); then :meth:`absorb` the decrypted values. When :attr:`done`, :attr:`released`
    holds what each analysis's kind finishes (or :class:`Withheld`) and :attr:`widths` how
    many values each took over all rounds.
    """

    def __init__(self, job: Job, plans: Sequence[Plan] | None = None):
        self.job = job
        self.plans = list(job.plans("ckks") if plans is None else plans)
        self.gates: list[Gates] = list(job.release_gates(self.plans))
        self._states: dict[int, Any] = {i: initial_state(p) for i, p in enumerate(self.plans)
                                        if is_iterative(p)}
        self._pending = list(range(len(job.analyses)))
        self.rounds = 0
        self.released: dict[str, Any] = {}
        self.widths: dict[str, int] = {a.id: 0 for a in job.analyses}

    @property
    def max_rounds(self) -> int:
        """Most rounds the job can take (one, plus the longest iterative program's)."""
        return 1 + max((_program(p).max_rounds for p in self.plans if is_iterative(p)),
                       default=0)

    @property
    def done(self) -> bool:
        return not self._pending

    def pending(self) -> list[str]:
        """Ids of the analyses the next round carries, in job order."""
        return [self.job.analyses[i].id for i in self._pending]

    def round_job(self) -> Job:
        """The job of the next round: ``<job id>.<round>``, its pending analyses only."""
        if self.rounds >= self.max_rounds:
            raise ProtocolError("iterative analyses did not finish within their rounds")
        return replace(self.job, job_id=f"{self.job.job_id}.{self.rounds}",
                       analyses=tuple(self.job.analyses[i] for i in self._pending))

    def states(self) -> dict[str, Any]:
        """The public state of each iterative analysis the next round carries."""
        return {self.job.analyses[i].id: self._states[i] for i in self._pending
                if i in self._states}

    def layout_widths(self) -> list[int]:
        """Values of each pending analysis in the next round's vector, in job order."""
        return [self._sum_plan(i).width for i in self._pending]

    def n_values(self) -> int:
        """Length of the next round's packed vector."""
        return sum(self.layout_widths())

    def absorb(self, values: Sequence[float]) -> None:
        """Take one round's decrypted (and release-rounded) values: slice them per analysis,
        gate the first round, advance the iterative states."""
        sum_plans = [self._sum_plan(i) for i in self._pending]
        if len(values) != sum(p.width for p in sum_plans):
            raise ProtocolError("the decrypted sum does not fit the round's layout")
        self.rounds += 1
        offset, still = 0, []
        for i, plan in zip(self._pending, sum_plans, strict=True):
            aid = self.job.analyses[i].id
            piece = values[offset:offset + plan.width]
            offset += plan.width
            self.widths[aid] += plan.width
            if i not in self._states:
                self.released[aid] = released_from(plan, piece, self.gates[i],
                                                   self.job.min_cohort)
                continue
            totals = ckks_decode(plan, piece)
            if self.rounds == 1 and not self.gates[i].passes(totals, self.job.min_cohort):
                self.released[aid] = Withheld()  # the first round is gated
                continue
            program = _program(self.plans[i])
            self._states[i] = program.advance(self._states[i], totals)
            if program.done(self._states[i]):
                self.released[aid] = self._states[i]
            else:
                still.append(i)
        self._pending = still

    def _sum_plan(self, i: int) -> SumPlan:
        return sum_form(self.plans[i], self._states.get(i))


SendRound = Callable[[Job, Layout, dict[str, Any]], list[float]]


def run_rounds(job: Job, params: CkksParams, send_round: SendRound,
               plans: Sequence[Plan] | None = None) -> CkksRounds:
    """Run every round of ``job``: ``send_round(round_job, layout, states)`` aggregates one
    round and returns its decrypted values. Returns the finished :class:`CkksRounds`."""
    rounds = CkksRounds(job, plans)
    while not rounds.done:
        round_job = rounds.round_job()
        layout = Layout(n_values=rounds.n_values(), params=params)
        rounds.absorb(send_round(round_job, layout, rounds.states()))
    return rounds


__all__ = ["CkksRounds", "SendRound", "initial_state", "is_iterative", "released_from",
           "run_rounds", "site_vector", "sum_form"]
