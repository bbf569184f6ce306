"""Column declarations shared by every party of a study.

The schema is public: it fixes each column's type and bounds. Bounds matter for security as
well as correctness: the secure engines derive their number sizes from them, and every value
is checked against them before it contributes to anything that is shared.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from securecalc.core.limits import LEVELS, NAME_CHARS, SCHEMA_COLUMNS
from securecalc.errors import ConfigError

ColumnType = Literal["int", "float", "category"]
COLUMN_TYPES: tuple[str, ...] = ("int", "float", "category")


@dataclass(frozen=True)
class Column:
    """One declared column.

    ``int`` and ``float`` columns carry inclusive bounds ``min`` and ``max``; ``category``
    columns carry their ``levels`` (strings, in the order used for reference levels).
    """

    name: str
    type: ColumnType
    min: float | None = None
    max: float | None = None
    levels: tuple[str, ...] = ()

    @property
    def is_numeric(self) -> bool:
        return self.type in ("int", "float")

    @property
    def center(self) -> float:
        """A public shift near the middle of the range; an integer for int columns.

        Aggregates are taken of ``x - center``, which keeps sums of squares well conditioned.
        """
        assert self.min is not None and self.max is not None
        mid = (self.min + self.max) / 2
        return float(math.floor(mid)) if self.type == "int" else mid

    @property
    def max_abs_centered(self) -> float:
        """Largest ``|x - center|`` over the declared range."""
        assert self.min is not None and self.max is not None
        return max(abs(self.min - self.center), abs(self.max - self.center))


@dataclass(frozen=True)
class Schema:
    """The study's columns, by name."""

    columns: Mapping[str, Column] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Column:
        try:
            return self.columns[name]
        except KeyError:
            known = ", ".join(sorted(self.columns)) or "none"
            raise ConfigError(f"unknown column {name!r} (schema declares: {known})") from None

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    def __iter__(self) -> Iterator[Column]:
        return iter(self.columns.values())

    def names(self) -> list[str]:
        return list(self.columns)


def column_from_mapping(name: str, raw: Mapping[str, object], *,
                        path: str | None = None, table: str = "schema") -> Column:
    """Build a :class:`Column` from one ``[<table>.<name>]`` table, checking every field.

    ``table`` is the TOML table the column comes from (``schema`` in a study, ``catalogue``
    in a node's configuration); errors name the field under it.
    """
    where = f"{table}.{name}"

    def fail(message: str, key: str | None = None) -> ConfigError:
        return ConfigError(message, path=path, field=f"{where}.{key}" if key else where)

    NAME_CHARS.check(len(name), where, path=path)
    if not name.isidentifier():
        raise fail("column names must be identifiers (letters, digits, underscore)")
    known_keys = {"type", "min", "max", "levels"}
    for key in raw:
        if key not in known_keys:
            raise fail(f"unknown key (allowed: {', '.join(sorted(known_keys))})", key)
    ctype = raw.get("type")
    if ctype not in COLUMN_TYPES:
        raise fail(f"type must be one of {', '.join(COLUMN_TYPES)}, got {ctype!r}", "type")
    if ctype == "category":
        levels = raw.get("levels")
        if not isinstance(levels, list) or not levels:
            raise fail("a category column needs a non-empty list of levels", "levels")
        LEVELS.check(len(levels), f"{where}.levels", path=path)
        if not all(isinstance(level, str) and level for level in levels):
            raise fail("levels must be non-empty strings", "levels")
        NAME_CHARS.check(max(map(len, levels)), f"{where}.levels", path=path)
        if len(set(levels)) != len(levels):
            raise fail("levels must be distinct", "levels")
        if "min" in raw or "max" in raw:
            raise fail("a category column takes levels, not min/max")
        return Column(name=name, type="category", levels=tuple(levels))
    if "levels" in raw:
        raise fail("only category columns take levels", "levels")
    bounds: dict[str, float] = {}
    for key in ("min", "max"):
        value = raw.get(key)
        if value is None:
            raise fail(f"a {ctype} column needs {key}", key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail(f"{key} must be a number, got {value!r}", key)
        if ctype == "int" and not float(value).is_integer():
            raise fail(f"{key} of an int column must be a whole number, got {value!r}", key)
        if not math.isfinite(value) or abs(value) > 2**52:
            raise fail(f"{key} must be finite and at most 2**52 in magnitude", key)
        bounds[key] = float(value)
    if bounds["min"] > bounds["max"]:
        raise fail(f"min ({bounds['min']:g}) is greater than max ({bounds['max']:g})")
    numeric: ColumnType = "int" if ctype == "int" else "float"
    return Column(name=name, type=numeric, min=bounds["min"], max=bounds["max"])


def schema_from_mapping(raw: Mapping[str, object], *, path: str | None = None,
                        table: str = "schema") -> Schema:
    """Build a :class:`Schema` from the parsed TOML table ``[schema]`` (or ``[<table>]``)."""
    SCHEMA_COLUMNS.check(len(raw), table, path=path)
    columns: dict[str, Column] = {}
    for name, spec in raw.items():
        if not isinstance(spec, Mapping):
            raise ConfigError("each column must be a table", path=path, field=f"{table}.{name}")
        columns[name] = column_from_mapping(name, spec, path=path, table=table)
    return Schema(columns)
