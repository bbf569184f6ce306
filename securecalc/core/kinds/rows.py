"""A site's rows as kinds read them: filter masks narrowed to present values, outcomes as
0/1 integers."""

from __future__ import annotations

import numpy as np

from securecalc.core.schema import Schema
from securecalc.core.table import Table


def present(table: Table, names: tuple[str, ...] | list[str], mask: np.ndarray) -> np.ndarray:
    """``mask`` narrowed to rows where every named column is present."""
    keep = mask.copy()
    for name in names:
        keep &= ~table.column(name).missing
    return keep


def binary_values(table: Table, schema: Schema, name: str, keep: np.ndarray) -> np.ndarray:
    """0/1 int64 values of an outcome column (see :func:`binary_column`) on ``keep``."""
    values = table.column(name).values[keep]
    out: np.ndarray = (values == 1) if schema[name].type == "category" else values
    return out.astype(np.int64)
