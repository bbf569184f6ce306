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
_BODY = ("seq", "time", "event", "data", "prev")
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


def parse_record(line: str | bytes) -> dict[str, Any] | None:
    """The audit record on ``line``, or None when the line is not one."""
    try:
        record = json.loads(line)
        if (isinstance(record, dict) and all(k in record for k in _BODY)
                and isinstance(record.get("hash"), str) and type(record["seq"]) is int):
            return record
    except ValueError:
        pass
    return None


class ChainCheck:
    """Checks records one line at a time, remembering only the previous record's hash."""

    def __init__(self) -> None:
        self.count = 0
        self.prev = GENESIS

    def feed(self, number: int, line: str | bytes) -> tuple[dict[str, Any] | None,
                                                             list[Problem]]:
        """The record on line ``number`` (None when it is not one) and its problems."""
        if not line.strip():
            return None, [Problem(number, "empty line")]
        record = parse_record(line)
        if record is None:
            return None, [Problem(number, "not an audit record")]
        problems = []
        body = {k: record[k] for k in _BODY}
        expected_seq = self.count + 1
        if record_hash(body) != record["hash"]:
            problems.append(Problem(number, f"record {body['seq']} was changed (hash mismatch)"))
        if body["seq"] != expected_seq:
            problems.append(Problem(number, f"sequence {body['seq']} where {expected_seq} was "
                                            "expected (record deleted, inserted or reordered)"))
        if body["prev"] != self.prev:
            problems.append(Problem(number, "does not follow the record before it (record "
                                            "deleted, inserted or reordered)"))
        self.count += 1
        self.prev = record["hash"]
        return record, problems


def verify_chain(lines: Iterable[str | bytes]) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Parse and check every record; return the records and every problem found."""
    records: list[dict[str, Any]] = []
    problems: list[Problem] = []
    check = ChainCheck()
    for number, line in enumerate(lines, start=1):
        record, found = check.feed(number, line)
        if record is not None:
            records.append(record)
        problems.extend(found)
    return records, problems
