"""An analysis a study asks for: a plain record of its ``[[analysis]]`` table.

The record knows nothing of the kinds: :mod:`securecalc.core.study_model` validates a table
with its kind (see :mod:`securecalc.core.kinds`) and records the columns it reads. What each
kind reveals beyond its output is stated in its class and in the README.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

COMMON_KEYS = ("id", "kind", "where", "epsilon")
"""The keys every analysis shares; the rest belong to its kind."""


@dataclass(frozen=True)
class Analysis:
    """One requested analysis.

    ``column`` is the main column of kinds that have one; ``options`` holds the kind's other
    validated keys (plain JSON values). ``epsilon``: release with differential privacy at
    this epsilon (see :mod:`securecalc.core.privacy`); None releases exact results.
    ``columns``: every column the kind reads (its filter's excepted), recorded when the table
    is validated; () for a record built by hand.
    """

    id: str
    kind: str
    column: str | None = None
    where: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    epsilon: float | None = None
    columns: tuple[str, ...] = field(default=(), compare=False, hash=False)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Analysis):
            return NotImplemented
        return self.table() == other.table()

    def __hash__(self) -> int:
        return hash(self.to_json())

    def table(self) -> dict[str, Any]:
        """The analysis as a ``[[analysis]]`` table."""
        out: dict[str, Any] = {"id": self.id, "kind": self.kind}
        if self.column is not None:
            out["column"] = self.column
        if self.where is not None:
            out["where"] = self.where
        if self.epsilon is not None:
            out["epsilon"] = self.epsilon
        out.update(self.options)
        return out

    def to_json(self) -> str:
        return json.dumps(self.table(), sort_keys=True)




