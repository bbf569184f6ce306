"""Checks of an analysis table's options: columns, levels, numbers.

Every check raises a :class:`~securecalc.errors.ConfigError` naming the key at fault (the
caller adds the file and the analysis's index).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from securecalc.core.limits import PREDICTORS
from securecalc.core.schema import Column, Schema
from securecalc.errors import ConfigError


def option_error(message: str, key: str | None = None) -> ConfigError:
    """An error about one key of the analysis table (the caller adds file and index)."""
    return ConfigError(message, field=key)


def numeric_column(raw: Mapping[str, Any], schema: Schema, key: str = "column") -> str:
    name = _column_name(raw, key)
    column = _declared(schema, name, key)
    if not column.is_numeric:
        raise option_error(f"needs a numeric column; {name!r} is a category", key)
    return name


def category_column(raw: Mapping[str, Any], schema: Schema, key: str) -> str:
    name = _column_name(raw, key)
    column = _declared(schema, name, key)
    if column.type != "category":
        raise option_error(f"needs a category column; {name!r} is {column.type}", key)
    return name


def column_list(raw: Mapping[str, Any], schema: Schema, key: str, *,
                numeric: bool = True, min_length: int = 1) -> list[str]:
    names = raw.get(key)
    if not isinstance(names, list) or len(names) < min_length or \
            not all(isinstance(n, str) and n for n in names):
        raise option_error(f"needs a list of at least {min_length} column names", key)
    if len(set(names)) != len(names):
        raise option_error("lists a column twice", key)
    for name in names:
        column = _declared(schema, name, key)
        if numeric and not column.is_numeric:
            raise option_error(f"needs numeric columns; {name!r} is a category", key)
    return list(names)


def number_list(raw: Mapping[str, Any], key: str, *, lo: float | None = None,
                hi: float | None = None, increasing: bool = False,
                min_length: int = 1) -> list[float]:
    values = raw.get(key)
    if not isinstance(values, list) or len(values) < min_length or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise option_error(f"needs a list of at least {min_length} numbers", key)
    out = [float(v) for v in values]
    if any(not np.isfinite(v) for v in out):
        raise option_error("numbers must be finite", key)
    if lo is not None and any(v < lo for v in out) or hi is not None and any(v > hi for v in out):
        raise option_error(f"numbers must lie in [{lo:g}, {hi:g}]", key)
    if increasing and any(b <= a for a, b in zip(out, out[1:], strict=False)):
        raise option_error("numbers must be strictly increasing", key)
    return out


def _column_name(raw: Mapping[str, Any], key: str) -> str:
    name = raw.get(key)
    if not isinstance(name, str) or not name.strip():
        raise option_error(f"must name a column (a non-empty string), got {name!r}", key)
    return name


def _declared(schema: Schema, name: str, key: str) -> Column:
    if name not in schema:
        known = ", ".join(schema.names()) or "none"
        raise option_error(f"unknown column {name!r} (schema declares: {known})", key)
    return schema[name]


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and \
        math.isfinite(value)


def level_list(raw: Mapping[str, Any], key: str, column: Column, *,
               length: int | None = None) -> list[str]:
    """A list of declared, distinct levels of ``column`` (exactly ``length`` if given)."""
    levels = raw.get(key)
    what = f"a list of {length} levels" if length else "a list of levels"
    if not isinstance(levels, list) or not levels or \
            not all(isinstance(level, str) for level in levels):
        raise option_error(f"needs {what} of column {column.name!r}", key)
    if length is not None and len(levels) != length:
        raise option_error(f"needs {what} of column {column.name!r}, got {len(levels)}", key)
    if len(set(levels)) != len(levels):
        raise option_error("lists a level twice", key)
    for level in levels:
        if level not in column.levels:
            known = ", ".join(repr(x) for x in column.levels)
            raise option_error(f"unknown level {level!r} of column {column.name!r} "
                               f"(declared: {known})", key)
    return list(levels)


def optional_number(raw: Mapping[str, Any], key: str, default: Any, *, positive: bool = True,
                    whole: bool = False, lo: float | None = None,
                    hi: float | None = None) -> Any:
    """An optional number (kept as written); ``default`` when absent."""
    if key not in raw:
        return default
    value = raw[key]
    if not is_number(value):
        raise option_error(f"must be a finite number, got {value!r}", key)
    if whole and not float(value).is_integer():
        raise option_error(f"must be a whole number, got {value!r}", key)
    if positive and value <= 0:
        raise option_error(f"must be positive, got {value!r}", key)
    if lo is not None and value < lo:
        raise option_error(f"must be at least {lo:g}, got {value!r}", key)
    if hi is not None and value > hi:
        raise option_error(f"must be at most {hi:g}, got {value!r}", key)
    return value


def binary_column(raw: Mapping[str, Any], schema: Schema, key: str) -> str:
    """An outcome column: int with bounds within [0, 1], or a category with two levels
    (the second level counts as 1)."""
    name = raw.get(key)
    if not isinstance(name, str) or not name.strip():
        raise option_error(f"must name a column (a non-empty string), got {name!r}", key)
    column = _declared(schema, name, key)
    if column.type == "category":
        if len(column.levels) != 2:
            raise option_error(f"needs a 0/1 outcome: category column {name!r} has "
                               f"{len(column.levels)} levels, not 2", key)
        return name
    assert column.min is not None and column.max is not None
    if column.type != "int" or column.min < 0 or column.max > 1:
        raise option_error(f"needs a 0/1 outcome: an int column with bounds within [0, 1] or "
                           f"a two-level category; {name!r} is {column.type} "
                           f"[{column.min:g}, {column.max:g}]", key)
    return name


def predictor_list(raw: Mapping[str, Any], schema: Schema, key: str, *,
                   outcome: str) -> list[str]:
    """Predictor columns: numeric, or category with at least two levels; not the outcome."""
    PREDICTORS.check_length(raw.get(key), key)
    names = column_list(raw, schema, key, numeric=False, min_length=1)
    for name in names:
        if name == outcome:
            raise option_error(f"lists the outcome {name!r} as a predictor", key)
        column = schema[name]
        if column.type == "category" and len(column.levels) < 2:
            raise option_error(f"category column {name!r} has a single level, so it cannot "
                               "be a predictor", key)
    PREDICTORS.check(sum(len(schema[n].levels) - 1 if schema[n].type == "category" else 1
                         for n in names), key, hint="a category counts one term per level "
                     "after the first")
    return names
