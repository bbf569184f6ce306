"""The contract every analysis kind fulfils.

A kind validates its ``[[analysis]]`` table, names the columns it reads, says which plan it
needs from an engine (see :mod:`securecalc.core.plans`), computes one site's local input
from that site's rows, and finishes the released totals into a plain-JSON value. Kinds are
pure: numpy and scipy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from securecalc.core.local_stats import Bins, Histogram, LocalQuery, Value, evaluate
from securecalc.core.plans import Gates, Plan
from securecalc.core.schema import Schema
from securecalc.core.table import Table

if TYPE_CHECKING:  # annotations only: analyses imports the kinds
    from securecalc.core.analyses import Analysis


@dataclass(frozen=True)
class StudyOptions:
    """Study-wide settings a kind may need."""

    min_cell_count: int = 5
    min_cohort: int = 10


@dataclass(frozen=True)
class SearchResult:
    """What a :class:`~securecalc.core.plans.SearchPlan` releases: the pooled count and, per
    probability, the grid index found (``lo + index * resolution`` is the value)."""

    n: int
    indices: tuple[int, ...]


class Kind:
    """Base class of analysis kinds; subclasses set the class attributes."""

    name: str
    #: engines that can run this kind
    engines: ClassVar[frozenset[str]] = frozenset({"mpc", "ckks"})
    #: what the kind reveals beyond its output (also shown in the README)
    reveals: str = ""
    #: keys of its table besides id, kind and where, with a short description
    keys: ClassVar[Mapping[str, str]] = {}
    #: keys that must be present
    required: frozenset[str] = frozenset()
    #: differential privacy (see :mod:`securecalc.core.privacy`): ``"all"`` when one row can
    #: change every slot of the kind's SumPlan, ``"one"`` when it changes at most one slot
    #: (disjoint cells); None when the kind cannot take ``epsilon``, for ``dp_unsupported``
    dp_row_slots: ClassVar[str | None] = None
    dp_unsupported: ClassVar[str] = ("its finishing formulas are not yet robust to noisy "
                                     "sums: a noisy matrix or variance may be invalid")

    def parse(self, raw: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
        """Validated options (JSON-compatible). Raise ConfigError(field=<key>) on mistakes."""
        raise NotImplementedError

    def columns(self, options: Mapping[str, Any]) -> tuple[str, ...]:
        """Every column the analysis reads (its filter's columns are added by the caller)."""
        raise NotImplementedError

    def counts(self, options: Mapping[str, Any], schema: Schema) -> int:
        """How many counts the analysis pools (histogram bins, crosstab cells, survival
        groups x time points), computed without building them; 0 for other kinds."""
        return 0

    def check_engine(self, analysis: Analysis, schema: Schema, engine: str) -> None:
        """Refuse, before any work, what ``engine`` cannot run at this size (see
        :mod:`securecalc.core.limits`); nothing to refuse by default."""

    def plan(self, analysis: Analysis, schema: Schema, engine: str,
             study: StudyOptions) -> Plan:
        raise NotImplementedError

    def local(self, analysis: Analysis, schema: Schema, table: Table, mask: np.ndarray,
              study: StudyOptions) -> Any:
        """This site's input under :meth:`plan` (``mask``: rows kept by the filter).

        SumPlan: a tuple of numbers, one per slot. SearchPlan: a sorted int64 array of grid
        indices (see SearchPlan). IterativePlan: whatever the program's ``local`` takes.
        By default :meth:`assemble` of :meth:`local_query` evaluated on ``table``.
        """
        query = self.local_query(analysis, schema, study)
        if query is None:
            raise NotImplementedError
        return self.assemble(analysis, schema, query, evaluate(query, table, mask))

    def local_query(self, analysis: Analysis, schema: Schema,
                    study: StudyOptions) -> LocalQuery | None:
        """The statistics :meth:`local` is made of (see :mod:`securecalc.core.local_stats`),
        which a database can compute; None when the input needs the rows themselves."""
        return None

    def assemble(self, analysis: Analysis, schema: Schema, query: LocalQuery,
                 values: tuple[Value, ...]) -> Any:
        """This site's input from the values of :meth:`local_query`: by default every value
        in order, each histogram as its dense counts."""
        return flatten(query, values)

    def cohort_slots(self, analysis: Analysis, schema: Schema, plan: Plan) -> tuple[int, ...]:
        """Slots of a SumPlan (an IterativePlan's first round) that hold cohort sizes: the
        whole cohort, each level or group a released number depends on, and each one's
        complement. When the study sets ``min_cohort``, the analysis is released only if
        every one of them reaches it (checked securely on MPC)."""
        return ()

    def cell_slots(self, analysis: Analysis, schema: Schema, plan: Plan) -> tuple[int, ...]:
        """Slots of a SumPlan that hold exact counts on which released numbers rest: the
        analysis is released only if each is 0 or reaches ``min_cell_count`` (decided with
        the cohort slots, in the same secure test)."""
        return ()

    def gates(self, analysis: Analysis, schema: Schema, plan: Plan,
              study: StudyOptions) -> Gates:
        """What must hold for anything of the analysis to be released, under ``study``'s
        thresholds (a threshold of 1 gates nothing)."""
        return Gates(self.cohort_slots(analysis, schema, plan) if study.min_cohort > 1 else (),
                     self.cell_slots(analysis, schema, plan) if study.min_cell_count > 1 else (),
                     study.min_cell_count)

    def extremes(self, analysis: Analysis) -> bool:
        """Whether the analysis releases a single patient's value by definition (min, max):
        a node runs it only if its policy sets ``allow_extremes``."""
        return False

    def withheld_note(self, analysis: Analysis, study: StudyOptions) -> str:
        """The note of an analysis whose gates failed (the same whichever gate failed)."""
        return (f"withheld: the cohort, or a level or group of it, or its complement, is "
                f"smaller than min_cohort ({study.min_cohort})")

    def release_note(self, analysis: Analysis, schema: Schema, released: Any,
                     study: StudyOptions) -> str | None:
        """A note on a released analysis (e.g. some of its values withheld), or None."""
        return None

    def finish(self, analysis: Analysis, schema: Schema, released: Any,
               study: StudyOptions) -> tuple[Any, int]:
        """``(value, n)`` from what the engine released.

        SumPlan: a tuple of Fractions, None where a count was withheld. SearchPlan: a
        :class:`SearchResult`. IterativePlan: the program's final state.
        """
        raise NotImplementedError


def flatten(query: LocalQuery, values: tuple[Value, ...]) -> tuple[Any, ...]:
    """The values of ``query`` as one tuple: numbers as they are, histograms dense."""
    out: list[Any] = []
    for statistic, value in zip(query.statistics, values, strict=True):
        if isinstance(value, Histogram):
            assert isinstance(statistic, Bins)
            out.extend(value.dense(statistic.size))
        else:
            out.append(value)
    return tuple(out)
