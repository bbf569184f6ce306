"""A hospital's data as typed numpy columns, validated against the study schema.

Every value is checked before anything is computed from it. Each :class:`DataError` names
the file, the column, the first offending row (and, for CSV, its line), the bad value and
how many rows share the problem.

Missing values: an empty cell, ``NA`` (unless ``NA`` is a declared level) and a null are
missing in every column; in float columns ``NaN`` is missing too. Int columns store 0 in
missing rows, float columns NaN, category columns the code -1; ``ColumnData.missing`` flags
them either way.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from securecalc.core.schema import Column, Schema
from securecalc.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq
else:  # imported on first use: the coordinator never reads a table

    class _Lazy:
        """A module imported when first used (pyarrow costs ~0.1 s of start-up)."""

        def __init__(self, name: str):
            self._name = name

        def __getattr__(self, attr: str) -> Any:
            import importlib

            return getattr(importlib.import_module(self._name), attr)

    pa, pc, pa_csv, pq = (_Lazy(n) for n in ("pyarrow", "pyarrow.compute", "pyarrow.csv",
                                              "pyarrow.parquet"))

CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
MISSING_TEXT = ("", "NA")

# Anything Arrow's string-to-double cast accepts, so that a failed cast can be located.
_NUMBER_RE = r"^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|(?i:inf|infinity|nan))$"


@dataclass(frozen=True)
class ColumnData:
    """One loaded column: ``values`` (int64, float64 or int64 level codes) and a missing mask."""

    values: np.ndarray
    missing: np.ndarray


class Table:
    """Validated columns of one data source, all of the same length."""

    def __init__(self, schema: Schema, columns: Mapping[str, ColumnData], n_rows: int):
        for name, data in columns.items():
            if name not in schema:
                raise DataError(f"column {name!r} is not declared in the schema")
            if len(data.values) != n_rows or len(data.missing) != n_rows:
                raise DataError(f"column {name!r} has {len(data.values)} rows, expected {n_rows}")
        self._schema = schema
        self._columns = {c.name: columns[c.name] for c in schema if c.name in columns}
        self._n_rows = n_rows

    @property
    def schema(self) -> Schema:
        return self._schema

    @property
    def n_rows(self) -> int:
        return self._n_rows

    @property
    def names(self) -> tuple[str, ...]:
        """Loaded column names, in schema order."""
        return tuple(self._columns)

    def __contains__(self, name: object) -> bool:
        return name in self._columns

    def column(self, name: str) -> ColumnData:
        try:
            return self._columns[name]
        except KeyError:
            loaded = ", ".join(self._columns) or "none"
            raise DataError(f"table has no column {name!r} (loaded: {loaded})") from None

    def __repr__(self) -> str:
        return f"Table(n_rows={self._n_rows}, columns={list(self._columns)})"

    @classmethod
    def from_columns(
        cls, schema: Schema, data: Mapping[str, Sequence[object] | np.ndarray]
    ) -> Table:
        """Build a validated table from Python lists or numpy arrays (``None`` = missing)."""
        lengths = {name: len(values) for name, values in data.items()}
        if len(set(lengths.values())) > 1:
            raise DataError(f"columns differ in length: {lengths}")
        n_rows = next(iter(lengths.values()), 0)
        columns = {}
        for name, values in data.items():
            if name not in schema:
                known = ", ".join(schema.names()) or "none"
                raise DataError(f"column {name!r} is not declared in the schema (known: {known})")
            column = schema.columns[name]
            ctx = _Context("data passed to Table.from_columns", column)
            if column.type == "category":
                columns[name] = _category(ctx, _python_strings(ctx, values))
            else:
                columns[name] = _numeric(ctx, *_python_numbers(ctx, values))
        return cls(schema, columns, n_rows)


# --------------------------------------------------------------------------- loading


def load_table(path: str | Path, schema: Schema, columns: Iterable[str] | None = None) -> Table:
    """Load ``columns`` (default: every schema column) of a CSV or Parquet file.

    The format follows the suffix: ``.csv``, ``.parquet`` or ``.pq``. Columns of the file
    that are not requested are never converted. Raises :class:`DataError`.
    """
    path = Path(path)
    wanted = schema.names() if columns is None else list(dict.fromkeys(columns))
    for name in wanted:
        schema[name]  # ConfigError for a column the schema does not declare
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        raise DataError(
            f"{path}: unsupported file type {path.suffix or '(none)'!r} "
            f"(use {', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)})"
        )
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if suffix in CSV_SUFFIXES:
        return _load_csv(path, schema, wanted)
    return _load_parquet(path, schema, wanted)


def _check_header(path: Path, header: Sequence[str], wanted: Sequence[str]) -> None:
    have = ", ".join(repr(h) for h in header) or "no columns"
    for name in wanted:
        count = list(header).count(name)
        if count == 0:
            raise DataError(f"{path}: column {name!r} is required but absent (file has: {have})",
                            column=name)
        if count > 1:
            raise DataError(f"{path}: column {name!r} appears {count} times in the header")


def _load_csv(path: Path, schema: Schema, wanted: list[str]) -> Table:
    header, has_rows = _csv_header(path)
    _check_header(path, header, wanted)
    arrow = _read_csv(path, wanted or header[:1]) if has_rows else None
    line_of = _CsvLines(path)
    columns = {}
    for name in wanted:
        column = schema.columns[name]
        cells = arrow.column(name).combine_chunks() if arrow else pa.array([], pa.string())
        ctx = _Context(str(path), column, line_of)
        if column.type == "category":
            columns[name] = _category(ctx, cells)
        else:
            columns[name] = _numeric(ctx, *_parse_numbers(ctx, cells))
    return Table(schema, columns, arrow.num_rows if arrow else 0)


def _csv_header(path: Path) -> tuple[list[str], bool]:
    """The header row, and whether any data row follows it."""
    try:
        with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            has_rows = any(record for record in reader)
    except (OSError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read as CSV: {exc}") from exc
    if header is None:
        raise DataError(f"{path}: file is empty (no header row)")
    if any("\udc80" <= ch <= "\udcff" for name in header for ch in name):
        raise DataError(f"{path}: the header row is not valid UTF-8 (save the file as UTF-8)")
    return header, has_rows


def _read_csv(path: Path, include: list[str]) -> pa.Table:
    """Read ``include`` as text columns; other columns are parsed but not converted."""
    try:
        return pa_csv.read_csv(
            path,
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                include_columns=include,
                column_types={name: pa.string() for name in include},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (OSError, pa.ArrowException) as exc:
        if "UTF8" in str(exc):
            line = _first_non_utf8_line(path)
            raise DataError(
                f"{path}: line {line} is not valid UTF-8 (save the file as UTF-8)"
            ) from exc
        raise DataError(f"{path}: cannot read as CSV: {exc}") from exc


def _first_non_utf8_line(path: Path) -> int | None:
    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None


def _load_parquet(path: Path, schema: Schema, wanted: list[str]) -> Table:
    try:
        parquet = pq.ParquetFile(path)
        _check_header(path, parquet.schema_arrow.names, wanted)
        include = wanted or parquet.schema_arrow.names[:1]
        arrow = parquet.read(columns=include)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: cannot read as Parquet: {exc}") from exc
    columns = {}
    for name in wanted:
        column = schema.columns[name]
        cells = arrow.column(name).combine_chunks()
        ctx = _Context(str(path), column)
        kind = cells.type
        if pa.types.is_dictionary(kind):
            cells, kind = cells.dictionary_decode(), kind.value_type
        if column.type == "category" and (
            pa.types.is_string(kind)
            or pa.types.is_large_string(kind)
            or pa.types.is_string_view(kind)
        ):
            columns[name] = _category(ctx, cells.cast(pa.string()))
        elif column.is_numeric and (
            pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
        ):
            missing = np.asarray(cells.is_null().to_numpy(zero_copy_only=False), bool)
            values = pc.cast(cells, pa.float64(), safe=False).fill_null(math.nan).to_numpy()
            columns[name] = _numeric(ctx, values, missing, _strings_cell(cells))
        else:
            expected = "strings" if column.type == "category" else "numbers"
            raise DataError(
                f"{path}: column {column.name!r} has Parquet type {kind}, "
                f"expected {expected} for a {column.type} column"
            )
    return Table(schema, columns, arrow.num_rows)


class _CsvLines:
    """Maps a 0-based data row to its physical line; scans the file only when an error occurs."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self, row: int) -> int | None:
        try:
            with self.path.open(newline="", encoding="utf-8-sig", errors="replace") as f:
                reader = csv.reader(f)
                seen = -1  # the header is row -1
                start = 1
                for record in reader:
                    if record:
                        if seen == row:
                            return start
                        seen += 1
                    start = reader.line_num + 1
        except (OSError, csv.Error):
            return None
        return None


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class _Context:
    """Where values come from, for error messages."""

    source: str
    column: Column
    line_of: Callable[[int], int | None] | None = None

    def reject(self, bad: np.ndarray, cell: Callable[[int], str], problem: str) -> DataError:
        """An error for the rows flagged in ``bad``: the first bad cell, then ``problem``."""
        rows = np.flatnonzero(bad)
        first, count = int(rows[0]), len(rows)
        line = self.line_of(first) if self.line_of else None
        at = f"row {first + 1}" + (f" (line {line})" if line is not None else "")
        message = cell(first) + problem
        affected = f"{count} row{'s' if count != 1 else ''} affected"
        return DataError(f"{self.source}: column {self.column.name!r}, {at}: {message}; {affected}",
                         column=self.column.name, reason=_reason(affected, problem))


def _reason(affected: str, problem: str) -> str:
    """The fault without the offending value: "2 rows affected: value is outside ..."."""
    problem = problem.strip()
    return f"{affected}: " + (problem[2:] if problem.startswith(": ") else f"value {problem}")


def _strings_cell(cells: pa.Array) -> Callable[[int], str]:
    return lambda i: repr(cells[i].as_py())


def _text_missing(cells: pa.Array, column: Column) -> np.ndarray:
    markers = [m for m in MISSING_TEXT if m not in column.levels]
    missing = pc.or_kleene(
        pc.is_null(cells), pc.is_in(cells, value_set=pa.array(markers, pa.string()))
    )
    return np.asarray(missing.to_numpy(zero_copy_only=False), bool)


def _parse_numbers(
    ctx: _Context, raw: pa.Array
) -> tuple[np.ndarray, np.ndarray, Callable[[int], str]]:
    """Text cells to float64 values (NaN where missing), the missing mask and a cell printer."""
    cell = _strings_cell(raw)
    cells = pc.utf8_trim_whitespace(raw)
    missing = _text_missing(cells, ctx.column)
    filled = pc.if_else(pa.array(missing), "0", cells) if missing.any() else cells
    try:
        values = pc.cast(filled, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid as exc:
        valid = pc.match_substring_regex(filled, _NUMBER_RE).to_numpy(zero_copy_only=False)
        bad = ~valid & ~missing
        if not bad.any():  # Arrow refused something the pattern accepts; report it plainly
            raise DataError(f"{ctx.source}: column {ctx.column.name!r}: {exc}",
                            column=ctx.column.name) from exc
        raise ctx.reject(bad, cell, " is not a number") from None
    values = values.copy()
    values[missing] = math.nan
    return values, missing, cell


def _numeric(
    ctx: _Context, values: np.ndarray, missing: np.ndarray, cell: Callable[[int], str]
) -> ColumnData:
    """Check float64 ``values`` against the column's type and bounds; build its ColumnData."""
    column = ctx.column
    kind = column.type
    nan = np.isnan(values) & ~missing
    if kind == "int" and nan.any():
        raise ctx.reject(nan, cell, f": NaN is not allowed in int column {column.name}")
    infinite = np.isinf(values)
    if infinite.any():
        raise ctx.reject(
            infinite, cell, f": infinity is not allowed in {kind} column {column.name}"
        )
    if kind == "float":
        missing = missing | nan
    else:
        fractional = (values != np.floor(values)) & ~missing
        if fractional.any():
            raise ctx.reject(fractional, cell, f" is not a whole number (int column {column.name})")
    assert column.min is not None and column.max is not None
    outside = (values < column.min) | (values > column.max)
    if outside.any():
        bounds = f"[{_number(column.min)}, {_number(column.max)}]"
        raise ctx.reject(outside, cell, f" is outside the declared range {bounds}")
    if kind == "int":
        values = np.where(missing, 0.0, values).astype(np.int64)
    return _frozen(values, missing)


def _category(ctx: _Context, cells: pa.Array) -> ColumnData:
    """Text cells to level codes (-1 where missing)."""
    column = ctx.column
    cells = pc.utf8_trim_whitespace(cells)
    missing = _text_missing(cells, column)
    codes = pc.index_in(cells, value_set=pa.array(column.levels, pa.string()))
    unknown = codes.is_null().to_numpy(zero_copy_only=False) & ~missing
    if unknown.any():
        levels = ", ".join(repr(level) for level in column.levels)
        raise ctx.reject(
            unknown,
            _strings_cell(cells),
            f" is not a level of category column {column.name} (allowed: {levels})",
        )
    values = codes.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return _frozen(values, missing)


def _python_numbers(
    ctx: _Context, values: Sequence[object] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, Callable[[int], str]]:
    """Numbers from a numeric numpy array, or from a list/object array with ``None`` = missing."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        floats = values.astype(np.float64)
        return floats, np.zeros(len(floats), bool), lambda i: repr(values[i].item())
    items = list(values)
    floats = np.empty(len(items), np.float64)
    missing = np.zeros(len(items), bool)
    for i, item in enumerate(items):
        if item is None:
            missing[i], floats[i] = True, math.nan
        elif isinstance(item, Real) and not isinstance(item, str):
            try:
                floats[i] = float(item)
            except OverflowError:
                floats[i] = math.copysign(1e308, item)
        else:
            bad = np.zeros(len(items), bool)
            bad[i] = True
            raise ctx.reject(bad, lambda j: repr(items[j]), " is not a number")
    return floats, missing, lambda i: repr(items[i])


def _python_strings(ctx: _Context, values: Sequence[object] | np.ndarray) -> pa.Array:
    """Strings from a list or array; ``None`` = missing."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "U":
        return pa.array(values, pa.string())
    items = list(values)
    for i, item in enumerate(items):
        if item is not None and not isinstance(item, str):
            bad = np.zeros(len(items), bool)
            bad[i] = True
            raise ctx.reject(bad, lambda j: repr(items[j]), " is not a string")
    return pa.array(items, pa.string())


def _frozen(values: np.ndarray, missing: np.ndarray) -> ColumnData:
    values = np.ascontiguousarray(values)
    missing = np.ascontiguousarray(missing, dtype=bool)
    values.flags.writeable = False
    missing.flags.writeable = False
    return ColumnData(values, missing)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


__all__ = ["ColumnData", "Table", "load_table"]
