"""The hash chain of an audit log (pure: hashlib and json only).

Every record carries its sequence number, the hash of the record before it and its own hash
over a canonical JSON encoding, so any changed, reordered, deleted or inserted record breaks
the chain. A truncated tail is found by comparing with a signed checkpoint (count and head
hash) that another party holds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
CHECKPOINT = "checkpoint"


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def record_hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(dict(body))).hexdigest()


def make_record(seq: int, time: str, event: str, data: Mapping[str, Any],
                prev: str) -> dict[str, Any]:
    body = {"seq": seq, "time": time, "event": event, "data": dict(data), "prev": prev}
    return {**body, "hash": record_hash(body)}


def checkpoint_message(signer: str, count: int, head: str) -> bytes:
    """The bytes a checkpoint signature covers."""
    return f"securecalc-audit-checkpoint/1|{signer}|{count}|{head}".encode()


@dataclass(frozen=True)
class Problem:
    line: int  # 1-based line of the log, 0 for the log as a whole
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


def verify_chain(lines: Iterable[str]) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Parse and check every record; return the records and every problem found."""
    records: list[dict[str, Any]] = []
    problems: list[Problem] = []
    prev = GENESIS
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            problems.append(Problem(number, "empty line"))
            continue
        try:
            record = json.loads(line)
            body = {k: record[k] for k in ("seq", "time", "event", "data", "prev")}
            stored = record["hash"]
        except (ValueError, KeyError, TypeError):
            problems.append(Problem(number, "not an audit record"))
            continue
        expected_seq = len(records) + 1
        if record_hash(body) != stored:
            problems.append(Problem(number, f"record {body['seq']} was changed (hash mismatch)"))
        if body["seq"] != expected_seq:
            problems.append(Problem(number, f"sequence {body['seq']} where {expected_seq} was "
                                            "expected (record deleted, inserted or reordered)"))
        if body["prev"] != prev:
            problems.append(Problem(number, "does not follow the record before it (record "
                                            "deleted, inserted or reordered)"))
        records.append(record)
        prev = stored
    return records, problems
