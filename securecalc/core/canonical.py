"""The canonical job: one object, one encoding, one digest for everything a job computes.

A job reaches each hospital as a message that the node decodes and validates
(:mod:`securecalc.core.study_model`); this module turns the validated job into plain data,
normalised so that two encodings of the same job give the same bytes (filters rendered from
their parse tree, numbers in one form, keys sorted), and digests it with SHA-256. Every
protection that must hold for "the job" uses this digest and nothing else:

- the hospitals' agreement round (:mod:`securecalc.node.agreement`): before any row is read,
  each hospital confirms the job digest with every other hospital of the job;
- approval: the approval id is the study digest (the job without its run);
- the audit trail: a job's records carry its digest;
- the MPC workers' handshake binds the job digest as well as the step shapes.

The job has two parts. The **study** part holds every field that can change what is computed
or released: engine, study name, parties in order with their addresses, the compute node,
the whole declared schema, every analysis with all its parameters, filter and epsilon, and
the thresholds. The **run** part holds what differs between runs of one study: the job id
and, on CKKS, the encryption parameters, the packed size, the digest of the public key
context and the public state of iterative analyses. An approval covers the study part (a new
run of an approved study needs no new approval; anything else does); the hospitals agree on
both. Deadlines and peer timeouts are not part of either: they change when a job fails, never
what it computes or releases.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from securecalc.core.job import Job
from securecalc.core.party import Party
from securecalc.core.where import parse_where
from securecalc.errors import ProtocolError

#: the version of the canonical form: a change of the form changes every digest
CANONICAL_VERSION = 1


@dataclass(frozen=True)
class RunParameters:
    """What one run adds to its study: CKKS parameters and state (empty on MPC)."""

    ckks_params: Mapping[str, Any] | None = None
    n_values: int | None = None
    public_context_sha256: str | None = None
    states: Mapping[str, Any] = field(default_factory=dict)

    def plain(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.ckks_params is not None:
            out["ckks_params"] = dict(self.ckks_params)
        if self.n_values is not None:
            out["n_values"] = self.n_values
        if self.public_context_sha256 is not None:
            out["public_context_sha256"] = self.public_context_sha256
        if self.states:
            out["states"] = dict(self.states)
        return out


@dataclass(frozen=True)
class CanonicalJob:
    """A job in canonical form with its digests.

    ``study_digest``: SHA-256 of the study part (the approval id is derived from it);
    ``digest``: SHA-256 of the whole job, study and run (what the hospitals agree on)."""

    study: dict[str, Any]
    run: dict[str, Any]
    study_digest: str
    digest: str

    def plain(self) -> dict[str, Any]:
        """The whole canonical job as plain data (what :attr:`digest` digests)."""
        return {"version": CANONICAL_VERSION, "study": self.study, "run": self.run}

    @property
    def approval_id(self) -> str:
        """The id an operator approves: the study's name and its digest (64 hex digits)."""
        return f"{self.study['study']}-{self.study_digest}"


def canonical_job(job: Job, engine: str, *, compute: Party | None = None,
                  run: RunParameters | None = None) -> CanonicalJob:
    """``job`` (validated) on ``engine`` in canonical form; ``compute``: the compute node a
    CKKS job sends ciphertexts to."""
    try:
        study = _study_part(job, engine, compute)
        run_part = normalised({"job_id": job.job_id, **(run or RunParameters()).plain()})
    except (ValueError, TypeError):  # e.g. NaN in a CKKS round's state: no canonical form
        raise ProtocolError("malformed job: it has no canonical form") from None
    study_digest = digest_of({"version": CANONICAL_VERSION, "study": study})
    whole = digest_of({"version": CANONICAL_VERSION, "study": study, "run": run_part})
    return CanonicalJob(study=study, run=run_part, study_digest=study_digest, digest=whole)


def _study_part(job: Job, engine: str, compute: Party | None) -> dict[str, Any]:
    study: dict[str, Any] = normalised({
        "engine": engine,
        "study": job.study,
        "parties": [{"name": p.name, "address": p.address} for p in job.parties],
        "compute": None if compute is None else {"name": compute.name,
                                                 "address": compute.address},
        "schema": {c.name: _column(c) for c in job.schema},
        "analyses": [_analysis(a.table(), job) for a in job.analyses],
        "min_cell_count": job.min_cell_count,
        "min_cohort": job.min_cohort,
    })
    return study


def _column(column: Any) -> dict[str, Any]:
    if column.type == "category":
        return {"type": column.type, "levels": list(column.levels)}
    return {"type": column.type, "min": column.min, "max": column.max}


def _analysis(table: Mapping[str, Any], job: Job) -> dict[str, Any]:
    out = dict(table)
    if out.get("where") is not None:
        out["where"] = str(parse_where(out["where"], job.schema))
    return out


def normalised(value: Any) -> Any:
    """``value`` as JSON-ready plain data in one form: mappings with string keys, lists for
    sequences, whole floats as integers, no NaN or infinity (ValueError)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("a canonical job holds finite numbers only")
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, Mapping):
        return {str(k): normalised(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalised(v) for v in value]
    raise TypeError(f"no canonical form for {type(value).__name__}")


def canonical_bytes(value: Any) -> bytes:
    """``value`` normalised and serialised as sorted-key compact UTF-8 JSON."""
    return json.dumps(normalised(value), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False).encode("utf-8")


def digest_of(value: Any) -> str:
    """SHA-256 (hex) of :func:`canonical_bytes`."""
    return hashlib.sha256(canonical_bytes(value)).hexdigest()


__all__ = ["CANONICAL_VERSION", "CanonicalJob", "RunParameters", "canonical_bytes",
           "canonical_job", "digest_of", "normalised"]
