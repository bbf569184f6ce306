"""Released results and what they cost, as written to results.json."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Cost:
    """Cost of obtaining a result: wall seconds, bytes sent by all parties, and either the
    communication rounds (MPC) or the ciphertexts exchanged (CKKS)."""

    seconds: float
    bytes_sent: int
    rounds: int | None = None
    ciphertexts: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seconds": round(self.seconds, 6), "bytes_sent": self.bytes_sent}
        if self.rounds is not None:
            out["rounds"] = self.rounds
        if self.ciphertexts is not None:
            out["ciphertexts"] = self.ciphertexts
        return out


@dataclass(frozen=True)
class AnalysisResult:
    id: str
    kind: str
    value: Any
    n: int | None
    cost: Cost
    #: why a value is missing (for example a cohort below the study's min_cohort)
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"kind": self.kind, "value": self.value, "n": self.n, "cost": self.cost.to_json()}
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class StudyResult:
    """Everything a study released, with the cost of each analysis and of the whole run.

    ``phases`` splits the total wall time (for example local aggregation, secure phase)."""

    study: str
    engine: str
    job_id: str
    results: dict[str, AnalysisResult]
    cost: Cost
    phases: dict[str, float] = field(default_factory=dict)
    #: signed audit heads the parties returned (JSON), kept out of results.json
    heads: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "engine": self.engine,
            "job_id": self.job_id,
            "results": {rid: r.to_json() for rid, r in self.results.items()},
            "cost": self.cost.to_json(),
            "phases": {k: round(v, 6) for k, v in self.phases.items()},
        }

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n")
