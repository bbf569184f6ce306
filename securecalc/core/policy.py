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

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from securecalc.errors import ConfigError, PolicyError

if TYPE_CHECKING:
    from securecalc.core.job import Job

CKKS_MODES = ("refuse", "epsilon", "exact")
"""``[policy] ckks``: no CKKS; only differentially private analyses; anything else allowed."""


@dataclass(frozen=True)
class Roster:
    """Whom a node works with, from its own configuration (never from a job)."""

    me: str
    hospitals: frozenset[str]
    compute: str


@dataclass(frozen=True)
class Policy:
    """``columns``/``kinds`` None means any; ``approval`` requires an operator per study.

    ``dp_budget``: when set, every analysis must be differentially private (``epsilon``),
    and the epsilon a study spends on this node over all its runs may not exceed it.
    ``dp_total_budget``: when set, the epsilon all studies together may spend.
    ``allow_extremes``: run min and max (and quantiles at p = 0 or 1), single patients' values.
    The node's privacy ledger keeps the account (:mod:`securecalc.node.privacy_ledger`).
    ``min_parties``: fewer parties are refused (MPC needs 3 whatever this says).
    ``require_all_hospitals``: every hospital of the roster must be a party, so results of
    different party subsets cannot be differenced ([a, b, c] minus [a, b, d] is c minus d).
    ``ckks``: one of :data:`CKKS_MODES`.
    """

    columns: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    min_cell_count: int = 5
    min_cohort: int = 10
    approval: bool = False
    dp_budget: float | None = None
    dp_total_budget: float | None = None
    allow_extremes: bool = False
    min_parties: int = 3
    require_all_hospitals: bool = False
    ckks: str = "epsilon"

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


def request_id(job: Job, engine: str, compute: str | None) -> str:
    """A stable id for what a study asks of a node: its name and the digest of everything
    :func:`describe_request` shows (a changed study, party list or compute node needs a new
    approval)."""
    body = _request_body(job, engine, compute)
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return f"{job.study}-{digest[:10]}"


def describe_request(job: Job, engine: str, compute: str | None) -> dict[str, Any]:
    """Exactly what a study asks for, as an operator reviews it before approving."""
    return {"id": request_id(job, engine, compute), **_request_body(job, engine, compute)}


def _request_body(job: Job, engine: str, compute: str | None) -> dict[str, Any]:
    return {
        "study": job.study,
        "engine": engine,
        "parties": list(job.party_names()),
        "compute": compute,
        "columns": job.columns(),
        "min_cell_count": job.min_cell_count,
        "min_cohort": job.min_cohort,
        "epsilon": job.epsilon,
        "analyses": [a.table() for a in job.analyses],
    }


def policy_from_mapping(raw: Mapping[str, Any], *, path: str | None = None) -> Policy:
    """Parse ``[policy]`` of node.toml."""
    allowed = {"columns", "kinds", "min_cell_count", "min_cohort", "approval", "dp_budget",
               "dp_total_budget", "min_parties", "require_all_hospitals", "ckks",
               "allow_extremes"}
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
    parties = _parties(raw, path)
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
                  **budgets, **parties,
                  allow_extremes=allow_extremes)


def _parties(raw: Mapping[str, Any], path: str | None) -> dict[str, Any]:
    """``min_parties``, ``require_all_hospitals`` and ``ckks`` of ``[policy]``."""
    defaults = Policy()
    min_parties = raw.get("min_parties", defaults.min_parties)
    if isinstance(min_parties, bool) or not isinstance(min_parties, int) or min_parties < 2:
        raise ConfigError(f"must be a whole number >= 2, got {min_parties!r}", path=path,
                          field="policy.min_parties")
    require_all = raw.get("require_all_hospitals", defaults.require_all_hospitals)
    if not isinstance(require_all, bool):
        raise ConfigError("must be true or false", path=path,
                          field="policy.require_all_hospitals")
    ckks = raw.get("ckks", defaults.ckks)
    if ckks not in CKKS_MODES:
        raise ConfigError(f"must be one of {', '.join(map(repr, CKKS_MODES))}, got {ckks!r}",
                          path=path, field="policy.ckks")
    return {"min_parties": min_parties, "require_all_hospitals": require_all, "ckks": ckks}
