"""A node's catalogue: the columns it offers, with their published types, bounds and levels.

The catalogue is public (``securecalc node describe`` prints it). A node checks its rows
against it when it starts and whenever its data file changes; a study is then checked against
the catalogue alone, before any row is read (:func:`check_coverage`). So whether a study is
refused, and what the refusal says, depends on the study and the catalogue, never on the
rows: a coordinator cannot bisect a patient's value by narrowing bounds study after study.

The node's semantics are the catalogue's: a study may only restate it. A study's declaration
of a column it reads must have the catalogue's type and, for a numeric column, exactly its
bounds, or, for a category, exactly its levels (in any order: the order picks the reference
level). Everything that depends on a declaration (which columns are 0/1 and gated as such,
fixed-point ranges, DP sensitivities, every gate) therefore comes from the catalogue, never
from a study that widens or narrows it. Refusing a different declaration, rather than
computing with the catalogue's in its place, keeps every hospital of a job computing the one
job they agreed on (a substituted declaration would differ between hospitals whose catalogues
differ). :func:`study_table` hands the rows over unchanged, with category codes renumbered
in the study's level order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import numpy as np

from securecalc.core.schema import Column, Schema, schema_from_mapping
from securecalc.core.table import ColumnData, Table
from securecalc.errors import PolicyError


def catalogue_from_mapping(raw: Mapping[str, object], *, path: str | None = None) -> Schema:
    """The catalogue of a parsed ``[catalogue]`` table (same keys as a study's ``[schema]``)."""
    return schema_from_mapping(raw, path=path, table="catalogue")


def coverage_problem(offered: Column, asked: Column) -> str | None:
    """Why the study's declaration ``asked`` does not restate the catalogue's ``offered``, or
    None. The text quotes only the two declarations, both public."""
    if offered.type != asked.type:
        published = "levels" if offered.type == "category" else "bounds"
        return (f"as {offered.type} with {published} {describe_column(offered)}; the study "
                f"declares it {asked.type}")
    if offered.type == "category":
        lacking = [level for level in offered.levels if level not in asked.levels]
        extra = [level for level in asked.levels if level not in offered.levels]
        if lacking or extra:
            return (f"with levels {_levels(offered.levels)}; the study declares "
                    f"{_levels(asked.levels)}: a study must restate the catalogue's levels "
                    "(in any order)")
        return None
    assert offered.min is not None and offered.max is not None
    assert asked.min is not None and asked.max is not None
    if asked.min != offered.min or asked.max != offered.max:
        return (f"with bounds {_bounds(offered)}; the study declares {_bounds(asked)}: a "
                "study must restate the catalogue's bounds")
    return None


def check_coverage(node: str, catalogue: Schema, schema: Schema, columns: Iterable[str]) -> None:
    """:class:`PolicyError` unless ``catalogue`` offers every column of ``columns`` in a way
    ``schema`` (the study's) covers; the first refused column is named."""
    for name in dict.fromkeys(columns):
        if name not in catalogue:
            offered = ", ".join(catalogue.names()) or "no columns"
            raise PolicyError(f"{node} does not offer column {name!r} (its catalogue: "
                              f"{offered})")
        problem = coverage_problem(catalogue[name], schema[name])
        if problem is not None:
            raise PolicyError(f"{node} offers column {name!r} {problem}")


def study_table(table: Table, schema: Schema, columns: Iterable[str]) -> Table:
    """``columns`` of a catalogue-validated ``table`` as the study declares them.

    Numeric columns are unchanged; category codes are renumbered in the study's level order
    (missing stays -1). Call after :func:`check_coverage` for the same columns.
    """
    names = list(dict.fromkeys(columns))
    data: dict[str, ColumnData] = {}
    for name in names:
        column = table.column(name)
        asked = schema[name]
        if asked.type == "category":
            codes = np.array([asked.levels.index(level) for level in table.schema[name].levels]
                             + [-1], dtype=np.int64)  # code -1 (missing) indexes the last: -1
            values = codes[column.values]
            values.flags.writeable = False
            column = ColumnData(values, column.missing)
        data[name] = column
    return Table(Schema({name: schema[name] for name in names}), data, table.n_rows)


def catalogue_toml(catalogue: Schema, table: str = "schema") -> str:
    """The catalogue as TOML ``[<table>.<column>]`` tables (by default a study's schema)."""
    blocks = []
    for column in catalogue:
        lines = [f"[{table}.{column.name}]", f'type = "{column.type}"']
        if column.type == "category":
            lines.append(f"levels = [{', '.join(_toml_string(v) for v in column.levels)}]")
        else:
            assert column.min is not None and column.max is not None
            lines += [f"min = {_toml_number(column, column.min)}",
                      f"max = {_toml_number(column, column.max)}"]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def describe_column(column: Column) -> str:
    """``[min, max]`` of a numeric column, or its levels."""
    return _levels(column.levels) if column.type == "category" else _bounds(column)


def _toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    escaped = "".join(f"\\u{ord(ch):04x}" if ch < " " or ch == "\x7f" or ch in '"\\' else ch
                      for ch in text)
    return f'"{escaped}"'


def _toml_number(column: Column, value: float) -> str:
    return str(int(value)) if column.type == "int" else repr(float(value))


def _bounds(column: Column) -> str:
    assert column.min is not None and column.max is not None
    return f"[{_show(column.min)}, {_show(column.max)}]"


def _show(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _levels(levels: Iterable[str]) -> str:
    return "[" + ", ".join(json.dumps(level) for level in levels) + "]"


__all__ = ["catalogue_from_mapping", "catalogue_toml", "check_coverage", "coverage_problem",
           "describe_column", "study_table"]
