"""Operator approval of studies: requests wait in a folder until someone approves them.

When a node's policy requires approval, a study's first request is refused and written to
``pending/<id>.json`` with exactly what it asks for; ``securecalc node approve <id>`` moves
it to ``approved/``. The id is the study's name and its canonical digest
(:mod:`securecalc.core.canonical`), which covers every field that can change what the study
computes or releases, so a study that changes any of them needs a new approval.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from securecalc.errors import ConfigError


class Approvals:
    def __init__(self, directory: Path):
        self.directory = directory
        self.pending = directory / "pending"
        self.approved = directory / "approved"

    def _path(self, folder: Path, request_id: str) -> Path:
        if not request_id or "/" in request_id or request_id.startswith("."):
            raise ConfigError(f"not a request id: {request_id!r}")
        return folder / f"{request_id}.json"

    def is_approved(self, request_id: str) -> bool:
        return self._path(self.approved, request_id).is_file()

    def record_pending(self, request: dict[str, Any]) -> Path:
        self.pending.mkdir(parents=True, exist_ok=True)
        path = self._path(self.pending, request["id"])
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(request, indent=2) + "\n")
        os.replace(tmp, path)
        return path

    def list_pending(self) -> list[dict[str, Any]]:
        if not self.pending.is_dir():
            return []
        return [json.loads(p.read_text()) for p in sorted(self.pending.glob("*.json"))]

    def approve(self, request_id: str) -> dict[str, Any]:
        """Approve a pending request; return what it asks for."""
        source = self._path(self.pending, request_id)
        if not source.is_file():
            known = ", ".join(r["id"] for r in self.list_pending()) or "none"
            raise ConfigError(f"no pending request {request_id!r} (pending: {known})")
        request = json.loads(source.read_text())
        self.approved.mkdir(parents=True, exist_ok=True)
        os.replace(source, self._path(self.approved, request_id))
        return request


def describe(request: dict[str, Any]) -> str:
    """What an operator sees before approving: the approval id, the canonical digest and
    every field it covers (a study that changes any of them has another digest, so it needs
    a new approval)."""
    covers = request["covers"]
    compute = covers.get("compute")
    lines = [f"request {request['id']}: study {covers['study']!r}",
             f"  digest:         sha256:{request['digest']} (covers everything below)",
             f"  engine:         {covers['engine']}",
             "  parties:        " + ", ".join(f"{p['name']} ({p['address']})"
                                              for p in covers["parties"]),
             *([f"  compute node:   {compute['name']} ({compute['address']}; receives every "
                "party's ciphertexts)"] if compute else []),
             f"  columns read:   {', '.join(request['columns']) or '(none)'}",
             f"  min_cell_count: {covers['min_cell_count']}",
             f"  min_cohort:     {covers['min_cohort']}",
             f"  epsilon:        {request['epsilon']:g} per run"
             if request["epsilon"] else "  epsilon:        none (exact results)",
             "  schema:"]
    for name, column in covers["schema"].items():
        shape = (f"levels {json.dumps(column['levels'])}" if column["type"] == "category"
                 else f"[{column['min']}, {column['max']}]")
        lines.append(f"    - {name}: {column['type']} {shape}")
    lines.append("  analyses:")
    for analysis in covers["analyses"]:
        extra = {k: v for k, v in analysis.items() if k not in ("id", "kind")}
        lines.append(f"    - {analysis['id']} ({analysis['kind']}) "
                     f"{json.dumps(extra, sort_keys=True)}")
    return "\n".join(lines)
