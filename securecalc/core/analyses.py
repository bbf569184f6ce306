"""Analyses a study asks for: their declaration in study.toml and its validation.

Every analysis is computed from *sufficient statistics*: each site reduces its own rows to a
few numbers (see :mod:`securecalc.core.statistics`), the engines add those numbers across sites
without revealing any site's share, and the result is finished from the pooled totals.

What each kind reveals beyond its output
----------------------------------------
``count``     the pooled count n (its output).
``sum``       the pooled n and sum: n is reported with every result.
``mean``      the pooled n and sum (equivalent to n and the mean).
``variance``  the pooled n, sum and sum of squares: equivalent to n, mean and variance, so the
``std``       pooled mean is revealed although it is not the requested output.
No per-site value is revealed by the MPC engine to anyone; the CKKS engine reveals the pooled
totals (with CKKS noise) to the coordinator only. Every party learns the released results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from securecalc.core.schema import Schema
from securecalc.core.where import parse_where
from securecalc.errors import ConfigError

#: kind -> whether it needs a numeric column (count takes an optional column of any type)
KINDS: dict[str, bool] = {"count": False, "sum": True, "mean": True, "variance": True,
                          "std": True}
_KEYS = {"id", "kind", "column", "where"}


@dataclass(frozen=True)
class Analysis:
    """One requested analysis. ``column`` is optional for ``count`` (then rows are counted)."""

    id: str
    kind: str
    column: str | None = None
    where: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,) if self.column else ()


def analysis_from_mapping(raw: Any, *, index: int, path: str | None = None) -> Analysis:
    """Build an :class:`Analysis` from one ``[[analysis]]`` table."""
    prefix = f"analysis[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError("must be a table", path=path, field=prefix)
    for key in raw:
        if key not in _KEYS:
            raise ConfigError(f"unknown key (allowed: {', '.join(sorted(_KEYS))})",
                              path=path, field=f"{prefix}.{key}")
    values: dict[str, str | None] = {}
    for key in ("id", "kind", "column", "where"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(f"must be a non-empty string, got {value!r}",
                              path=path, field=f"{prefix}.{key}")
        values[key] = value
    if values["id"] is None:
        raise ConfigError("is required", path=path, field=f"{prefix}.id")
    kind = values["kind"]
    if kind not in KINDS:
        raise ConfigError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})",
                          path=path, field=f"{prefix}.kind")
    if KINDS[kind] and values["column"] is None:
        raise ConfigError(f"kind {kind!r} needs a column", path=path, field=f"{prefix}.column")
    return Analysis(id=values["id"] or "", kind=kind, column=values["column"],
                    where=values["where"])


def check_analyses(analyses: Sequence[Analysis], schema: Schema, *,
                   path: str | None = None) -> None:
    """Check ids are unique, columns exist with a fitting type, and filters parse."""
    seen: set[str] = set()
    for i, analysis in enumerate(analyses):
        prefix = f"analysis[{i}]"
        if analysis.id in seen:
            raise ConfigError(f"duplicate analysis id {analysis.id!r}", path=path,
                              field=f"{prefix}.id")
        seen.add(analysis.id)
        if analysis.kind not in KINDS:
            raise ConfigError(f"unknown kind {analysis.kind!r} (known: {', '.join(KINDS)})",
                              path=path, field=f"{prefix}.kind")
        if KINDS[analysis.kind] and analysis.column is None:
            raise ConfigError(f"kind {analysis.kind!r} needs a column", path=path,
                              field=f"{prefix}.column")
        if analysis.column is not None:
            if analysis.column not in schema:
                known = ", ".join(schema.names()) or "none"
                raise ConfigError(f"unknown column {analysis.column!r} (schema declares: "
                                  f"{known})", path=path, field=f"{prefix}.column")
            if KINDS[analysis.kind] and not schema[analysis.column].is_numeric:
                raise ConfigError(f"kind {analysis.kind!r} needs a numeric column; "
                                  f"{analysis.column!r} is a category", path=path,
                                  field=f"{prefix}.column")
        if analysis.where:
            try:
                parse_where(analysis.where, schema)
            except ConfigError as exc:
                raise type(exc)(str(exc), path=path, field=f"{prefix}.where") from None
