"""A hospital's policy: what it lets studies compute on its data.

A node checks every job against its policy before computing anything, and refuses the whole
job with a message naming the rule and what broke it. Thresholds are checked on the study's
declared values: a study whose ``min_cell_count`` is below the node's own is refused, so the
secure computation never reveals a count smaller than every node allows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from securecalc.errors import ConfigError, PolicyError

if TYPE_CHECKING:
    from securecalc.core.job import Job


@dataclass(frozen=True)
class Policy:
    """``columns``/``kinds`` None means any; ``approval`` requires an operator per study.

    ``dp_budget``: when set, every analysis must be differentially private (``epsilon``),
    and the epsilon a study spends on this node over all its runs may not exceed it.
    ``dp_total_budget``: when set, the epsilon all studies together may spend.
    ``allow_extremes``: run min and max (and quantiles at p = 0 or 1), single patients' values.
    The node's privacy ledger keeps the account (:mod:`securecalc.node.privacy_ledger`).
    """

    columns: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    min_cell_count: int = 5
    min_cohort: int = 10
    approval: bool = False
    dp_budget: float | None = None
    dp_total_budget: float | None = None
    allow_extremes: bool = False

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
            from securecalc.core.kinds import kind_of

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
            if job.epsilon > self.dp_budget:
                raise PolicyError(f"study {job.study!r} asks for epsilon {job.epsilon:g} in "
                                  f"one run; this node allows {self.dp_budget:g} per study")


def request_id(job: Job) -> str:
    """A stable id for what a study asks of a node: its name and the digest of its analyses,
    schema and thresholds (a changed study needs a new approval)."""
    body = {"study": job.study, "analyses": [a.table() for a in job.analyses],
            "columns": job.columns(), "min_cell_count": job.min_cell_count,
            "min_cohort": job.min_cohort,
            "parties": list(job.party_names())}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return f"{job.study}-{digest[:10]}"


def describe_request(job: Job) -> dict[str, Any]:
    """Exactly what a study asks for, as an operator reviews it before approving."""
    return {
        "id": request_id(job),
        "study": job.study,
        "parties": list(job.party_names()),
        "columns": job.columns(),
        "min_cell_count": job.min_cell_count,
        "min_cohort": job.min_cohort,
        "epsilon": job.epsilon,
        "analyses": [a.table() for a in job.analyses],
    }


def policy_from_mapping(raw: Mapping[str, Any], *, path: str | None = None) -> Policy:
    """Parse ``[policy]`` of node.toml."""
    allowed = {"columns", "kinds", "min_cell_count", "min_cohort", "approval", "dp_budget",
               "dp_total_budget", "allow_extremes"}
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"unknown key (allowed: {', '.join(sorted(allowed))})",
                              path=path, field=f"policy.{key}")

    def names(key: str) -> frozenset[str] | None:
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError("must be a list of names", path=path, field=f"policy.{key}")
        return frozenset(value)

    thresholds = {}
    for key, default in (("min_cell_count", 5), ("min_cohort", 10)):
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"must be a whole number >= 1, got {value!r}", path=path,
                              field=f"policy.{key}")
        thresholds[key] = value
    approval, allow_extremes = raw.get("approval", False), raw.get("allow_extremes", False)
    for key, flag in (("approval", approval), ("allow_extremes", allow_extremes)):
        if not isinstance(flag, bool):
            raise ConfigError("must be true or false", path=path, field=f"policy.{key}")
    kinds = names("kinds")
    if kinds is not None:
        from securecalc.core.kinds import KINDS

        unknown = sorted(kinds - set(KINDS))
        if unknown:
            raise ConfigError(f"unknown kind(s) {', '.join(unknown)}", path=path,
                              field="policy.kinds")
    budgets = {}
    for key in ("dp_budget", "dp_total_budget"):
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not 0 < value < float("inf")):
            raise ConfigError(f"must be a positive number (an epsilon), got {value!r}",
                              path=path, field=f"policy.{key}")
        budgets[key] = None if value is None else float(value)
    return Policy(columns=names("columns"), kinds=kinds, approval=approval, **thresholds,
                  **budgets, allow_extremes=allow_extremes)
