"""Comparing tables row by row, whatever order the source returns them in."""

from __future__ import annotations

import numpy as np

from securecalc.core.table import Table


def sorted_rows(table: Table) -> np.ndarray:
    """Rows as a float matrix (missing = -inf, category = code), sorted lexicographically."""
    columns = [np.where(table.column(n).missing, -np.inf, table.column(n).values.astype(float))
               for n in table.names]
    matrix = np.stack(columns, axis=1) if columns else np.zeros((table.n_rows, 0))
    return matrix[np.lexsort(matrix.T[::-1])] if len(matrix) else matrix


def assert_same_rows(actual: Table, expected: Table) -> None:
    assert actual.names == expected.names
    assert actual.n_rows == expected.n_rows
    np.testing.assert_array_equal(sorted_rows(actual), sorted_rows(expected))
    for name in expected.names:  # dtypes and missing encodings too
        a, e = actual.column(name), expected.column(name)
        assert a.values.dtype == e.values.dtype, name
        np.testing.assert_array_equal(np.sort(a.missing), np.sort(e.missing))
