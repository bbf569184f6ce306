"""A hospital's policy: what it lets studies compute on its data.

A node checks every job against its policy before computing anything, and refuses the whole
job with a message naming the rule and what broke it. Thresholds are checked on the study's
declared values: a study whose ``min_cell_count`` is below the node's own is refused, so the
secure computation never reveals a count smaller than every node allows.

Who takes part is the node's choice too (:meth:`Policy.check_parties`): the parties must be
hospitals of the node's own roster, CKKS ciphertexts go only to the compute node its
configuration names, and on CKKS, where the coordinator decrypts pooled totals before any
suppression or cohort gate, the node decides whether it accepts exact totals at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from securecalc.core.canonical import CanonicalJob
from securecalc.core.defaults import (
    CKKS_MODES,
    DP_STUDY_BUDGET,
    DP_TOTAL_BUDGET,
    MAX_EPSILON,
    MIN_CELL_COUNT,
    MIN_COHORT,
    POLICY_CKKS,
    POLICY_MIN_PARTIES,
    POLICY_MIN_PARTIES_FLOOR,
)
from securecalc.core.job import Job
from securecalc.core.kinds import KINDS, kind_of
from securecalc.core.model import AtLeastOne, Flag, Model, checked, invalid, validate, whole
from securecalc.errors import PolicyError

__all__ = ["CKKS_MODES", "Policy", "Roster", "describe_request", "policy_from_mapping"]


def _name_set(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple | set | frozenset) \
            or not all(isinstance(v, str) and v for v in value):
        raise invalid("must be a list of names")
    return frozenset(value)


def _kind_set(value: Any) -> frozenset[str] | None:
    kinds = _name_set(value)
    unknown = sorted((kinds or frozenset()) - set(KINDS))
    if unknown:
        raise invalid(f"unknown kind(s) {', '.join(unknown)}")
    return kinds


def _budget(value: Any) -> float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                              or not 0 < value < float("inf")):
        raise invalid(f"must be a positive number (an epsilon), got {value!r}")
    return None if value is None else float(value)


def _ckks_mode(value: Any) -> str:
    if value not in CKKS_MODES:
        raise invalid(f"must be one of {', '.join(map(repr, CKKS_MODES))}, got {value!r}")
    return str(value)


NameSet = Annotated[frozenset[str] | None, checked(_name_set)]


@dataclass(frozen=True)
class Roster:
    """Whom a node works with, from its own configuration (never from a job)."""

    me: str
    hospitals: frozenset[str]
    compute: str
    #: whether the node can reach its compute node's pinned key (always, without TLS)
    compute_pinned: bool = True


class Policy(Model):
    """``columns``/``kinds`` None means any; ``approval`` requires an operator per study.

    ``dp_budget``: when set, every analysis must be differentially private (``epsilon``),
    and the epsilon a study spends on this node over all its runs may not exceed it.
    ``dp_total_budget``: the epsilon all studies together may spend.
    Unset, both budgets take the defaults of :mod:`securecalc.core.defaults`
    (:attr:`study_budget`, :attr:`total_budget`): every differentially private study is
    charged to a finite budget. ``max_epsilon``: the most one analysis may spend.
    ``allow_extremes``: run min and max (and quantiles at p = 0 or 1), single patients' values.
    The node's privacy ledger keeps the account (:mod:`securecalc.node.privacy_ledger`).
    ``min_parties``: fewer parties are refused (MPC needs 3 whatever this says).
    ``require_all_hospitals``: every hospital of the roster must be a party, so results of
    different party subsets cannot be differenced ([a, b, c] minus [a, b, d] is c minus d).
    ``ckks``: one of :data:`CKKS_MODES`.
    """

    columns: NameSet = None
    kinds: Annotated[frozenset[str] | None, checked(_kind_set)] = None
    min_cell_count: AtLeastOne = MIN_CELL_COUNT
    min_cohort: AtLeastOne = MIN_COHORT
    approval: Flag = False
    dp_budget: Annotated[float | None, checked(_budget)] = None
    dp_total_budget: Annotated[float | None, checked(_budget)] = None
    max_epsilon: Annotated[float, checked(_budget)] = MAX_EPSILON
    allow_extremes: Flag = False
    min_parties: Annotated[int, whole(POLICY_MIN_PARTIES_FLOOR)] = POLICY_MIN_PARTIES
    require_all_hospitals: Flag = False
    ckks: Annotated[str, checked(_ckks_mode)] = POLICY_CKKS

    @property
    def study_budget(self) -> float:
        """The epsilon one study may spend over all its runs on this node."""
        return self.dp_budget if self.dp_budget is not None else DP_STUDY_BUDGET

    @property
    def total_budget(self) -> float:
        """The epsilon all studies together may spend on this node."""
        return self.dp_total_budget if self.dp_total_budget is not None else DP_TOTAL_BUDGET

    def check_parties(self, job: Job, engine: str, compute: str | None, roster: Roster) -> None:
        """Refuse (PolicyError) a job whose parties, compute node or engine this node does not
        accept; ``compute`` is the compute node a CKKS job sends ciphertexts to."""
        parties = job.party_names()
        if roster.me not in parties:
            raise PolicyError(f"study {job.study!r}: {roster.me} is not among its parties")
        strangers = sorted(set(parties) - roster.hospitals)
        if strangers:
            raise PolicyError(f"study {job.study!r} lists {', '.join(strangers)} as a party, "
                              f"which is not a hospital in {roster.me}'s roster "
                              f"({', '.join(sorted(roster.hospitals))})")
        if len(parties) < self.min_parties:
            raise PolicyError(f"study {job.study!r} has {len(parties)} parties; this node "
                              f"requires min_parties >= {self.min_parties}")
        missing = sorted(roster.hospitals - set(parties))
        if self.require_all_hospitals and missing:
            raise PolicyError(f"study {job.study!r} leaves out {', '.join(missing)}; this "
                              "node requires every hospital of its roster "
                              "(require_all_hospitals)")
        if engine != "ckks":
            return
        if compute != roster.compute:
            raise PolicyError(f"study {job.study!r} sends ciphertexts to {compute!r}; this node "
                              f"sends them only to its compute node {roster.compute!r}")
        if not roster.compute_pinned:
            raise PolicyError(f"study {job.study!r} uses CKKS; this node has no key pin for its "
                              f"compute node {roster.compute!r} and sends ciphertexts only to a "
                              "pinned key (add it to [pins])")
        if self.ckks == "refuse":
            raise PolicyError(f"study {job.study!r} uses CKKS, which this node's policy "
                              "refuses (ckks = \"refuse\")")
        exact_ones = [a.id for a in job.analyses if a.epsilon is None]
        if self.ckks == "epsilon" and exact_ones:
            raise PolicyError(f"study {job.study!r} asks for exact CKKS results of "
                              f"{', '.join(exact_ones)}, which the coordinator would decrypt "
                              "before any suppression; this node's policy (ckks = "
                              "\"epsilon\") accepts CKKS only with epsilon per analysis")

    def check(self, job: Job) -> None:
        """Refuse (PolicyError) a job that asks for more than this policy allows."""
        if self.columns is not None:
            asked = set(job.columns())
            refused = sorted(asked - self.columns)
            if refused:
                raise PolicyError(f"study {job.study!r} reads column(s) {', '.join(refused)}, "
                                  "which this node's policy does not allow")
        if self.kinds is not None:
            refused = sorted({a.kind for a in job.analyses} - self.kinds)
            if refused:
                raise PolicyError(f"study {job.study!r} asks for kind(s) {', '.join(refused)}, "
                                  "which this node's policy does not allow")
        if not self.allow_extremes:
            extremes = [a.id for a in job.analyses if kind_of(a.kind).extremes(a)]
            if extremes:
                raise PolicyError(f"study {job.study!r} asks for a minimum or maximum "
                                  f"({', '.join(extremes)}), a single patient's value; this "
                                  "node's policy does not set allow_extremes")
        if job.min_cell_count < self.min_cell_count:
            raise PolicyError(f"study {job.study!r} would release counts down to "
                              f"{job.min_cell_count}; this node requires min_cell_count >= "
                              f"{self.min_cell_count}")
        if job.min_cohort < self.min_cohort:
            raise PolicyError(f"study {job.study!r} would release results of cohorts down to "
                              f"{job.min_cohort}; this node requires min_cohort >= "
                              f"{self.min_cohort}")
        if self.dp_budget is not None:
            exact_ones = [a.id for a in job.analyses if a.epsilon is None]
            if exact_ones:
                raise PolicyError(f"study {job.study!r} asks for exact results of "
                                  f"{', '.join(exact_ones)}; this node releases only "
                                  "differentially private results (set epsilon per analysis)")
        above = [a.id for a in job.analyses
                 if a.epsilon is not None and a.epsilon > self.max_epsilon]
        if above:
            raise PolicyError(f"study {job.study!r} asks for epsilon above "
                              f"{self.max_epsilon:g} in {', '.join(above)}; this node allows "
                              f"at most {self.max_epsilon:g} per analysis (policy.max_epsilon)")
        if job.epsilon > self.study_budget:
            raise PolicyError(f"study {job.study!r} asks for epsilon {job.epsilon:g} in "
                              f"one run; this node allows {self.study_budget:g} per study "
                              "(policy.dp_budget)")


def describe_request(job: Job, canonical: CanonicalJob) -> dict[str, Any]:
    """Exactly what a study asks for, as an operator reviews it before approving: the
    approval id (the study's canonical digest), everything that digest covers, and a summary
    (columns read, epsilon per run)."""
    return {"id": canonical.approval_id, "study": job.study, "digest": canonical.study_digest,
            "columns": job.columns(), "epsilon": job.epsilon, "covers": canonical.study}


def policy_from_mapping(raw: Mapping[str, Any], *, path: str | None = None) -> Policy:
    """Parse ``[policy]`` of node.toml."""
    return validate(Policy, raw, path=path, prefix=("policy",))
