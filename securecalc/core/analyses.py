"""Analyses a study asks for: their ``[[analysis]]`` tables and their validation.

Each kind (see :mod:`securecalc.core.kinds`) validates its own keys; this module handles
what every analysis shares (id, kind, where) and names the file and field of any mistake.
What each kind reveals beyond its output is stated in its class and in the README.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from securecalc.core.limits import ANALYSES, NAME_CHARS, STUDY_COUNTS
from securecalc.core.schema import Schema
from securecalc.core.where import parse_where
from securecalc.errors import ConfigError

_COMMON = ("id", "kind", "where", "epsilon")


@dataclass(frozen=True)
class Analysis:
    """One requested analysis.

    ``column`` is the main column of kinds that have one; ``options`` holds the kind's other
    validated keys (plain JSON values). ``epsilon``: release with differential privacy at
    this epsilon (see :mod:`securecalc.core.privacy`); None releases exact results.
    """

    id: str
    kind: str
    column: str | None = None
    where: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    epsilon: float | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Analysis):
            return NotImplemented
        return self.table() == other.table()

    def __hash__(self) -> int:
        return hash(self.to_json())

    @property
    def columns(self) -> tuple[str, ...]:
        from securecalc.core.kinds import kind_of

        return kind_of(self.kind).columns({**self.options, "column": self.column})

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


def _field_error(exc: ConfigError, prefix: str, path: str | None) -> ConfigError:
    message = str(exc)
    if exc.field and message.startswith(f"field {exc.field!r}: "):
        message = message[len(f"field {exc.field!r}: "):]
    field_name = f"{prefix}.{exc.field}" if exc.field else prefix
    return type(exc)(message, path=path, field=field_name)


def analysis_from_mapping(raw: Any, *, index: int, schema: Schema | None = None,
                          path: str | None = None) -> Analysis:
    """Build an :class:`Analysis` from one ``[[analysis]]`` table.

    With ``schema`` the kind validates its keys fully; without it only the shared keys are
    checked (:func:`check_analyses` completes the validation).
    """
    from securecalc.core.kinds import KINDS

    prefix = f"analysis[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError("must be a table", path=path, field=prefix)
    for key in ("id", "kind", "column", "where"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(f"must be a non-empty string, got {value!r}",
                              path=path, field=f"{prefix}.{key}")
    if raw.get("id") is None:
        raise ConfigError("is required", path=path, field=f"{prefix}.id")
    for key in ("id", "kind", "column"):
        if isinstance(raw.get(key), str):
            NAME_CHARS.check(len(raw[key]), f"{prefix}.{key}", path=path)
    kind_name = raw.get("kind")
    kind = KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        raise ConfigError(f"unknown kind {kind_name!r} (known: {', '.join(KINDS)})",
                          path=path, field=f"{prefix}.kind")
    allowed = {*_COMMON, *kind.keys}
    shown = allowed if kind.dp_row_slots else allowed - {"epsilon"}
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"unknown key for kind {kind_name!r} (allowed: "
                              f"{', '.join(sorted(shown))})", path=path,
                              field=f"{prefix}.{key}")
    for key in sorted(kind.required):
        if key not in raw:
            raise ConfigError(f"kind {kind_name!r} needs a {key}", path=path,
                              field=f"{prefix}.{key}")
    epsilon = _epsilon(raw.get("epsilon"), kind, path=path, field_name=f"{prefix}.epsilon")
    options = {k: v for k, v in raw.items() if k not in _COMMON}
    if schema is not None:
        try:
            options = kind.parse(options, schema)
        except ConfigError as exc:
            raise _field_error(exc, prefix, path) from None
    column = options.pop("column", None)
    return Analysis(id=raw["id"], kind=kind_name, column=column, where=raw.get("where"),
                    options=options, epsilon=epsilon)


def _epsilon(value: Any, kind: Any, *, path: str | None, field_name: str) -> float | None:
    from securecalc.core.kinds import KINDS
    from securecalc.core.privacy import parse_epsilon

    if value is None:
        return None
    try:
        epsilon = parse_epsilon(value)
    except ConfigError as exc:
        raise ConfigError(str(exc).removeprefix("field 'epsilon': "), path=path,
                          field=field_name) from None
    if kind.dp_row_slots is None:
        supported = ", ".join(k.name for k in KINDS.values() if k.dp_row_slots)
        raise ConfigError(f"kind {kind.name!r} cannot be released with differential privacy "
                          f"({kind.dp_unsupported}); kinds that can: {supported}",
                          path=path, field=field_name)
    return epsilon


def check_analyses(analyses: Sequence[Analysis], schema: Schema, *,
                   path: str | None = None, parsed: bool = False) -> None:
    """Check ids are unique, each kind's keys fit the schema, filters parse, and the counts
    of all analyses together stay within the limits table.

    ``parsed``: the analyses were just built by :func:`analysis_from_mapping` with this
    schema, so their kinds' keys need no second validation."""
    from securecalc.core.kinds import kind_of

    seen: set[str] = set()
    for i, analysis in enumerate(analyses):
        prefix = f"analysis[{i}]"
        if analysis.id in seen:
            raise ConfigError(f"duplicate analysis id {analysis.id!r}", path=path,
                              field=f"{prefix}.id")
        seen.add(analysis.id)
        if analysis.where is not None:
            try:
                parse_where(analysis.where, schema)
            except ConfigError as exc:
                raise type(exc)(str(exc), path=path, field=f"{prefix}.where") from None
        if parsed:
            continue
        reparsed = analysis_from_mapping(analysis.table(), index=i, schema=schema, path=path)
        if reparsed.table() != analysis.table():
            raise ConfigError("is not in its validated form", path=path, field=prefix)
    STUDY_COUNTS.check(sum(kind_of(a.kind).counts(a.table(), schema) for a in analyses),
                       "analysis", path=path,
                       hint="histogram bins, crosstab cells and survival time points per group")


def parse_analyses(raws: Sequence[Any], schema: Schema, *,
                   path: str | None = None) -> tuple[Analysis, ...]:
    """Every ``[[analysis]]`` table, fully validated against the schema."""
    ANALYSES.check(len(raws), "analysis", path=path)
    analyses = tuple(analysis_from_mapping(raw, index=i, schema=schema, path=path)
                     for i, raw in enumerate(raws))
    check_analyses(analyses, schema, path=path, parsed=True)
    return analyses
