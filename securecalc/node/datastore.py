"""A node's own data file, loaded and validated once per schema."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from securecalc.core.job import Job
from securecalc.core.schema import Column, Schema
from securecalc.core.table import Table, load_table
from securecalc.errors import DataError

_LOG = logging.getLogger(__name__)


def redacted(exc: DataError) -> DataError:
    """The error as the coordinator may see it: the column and the fault, never a value or row."""
    what = f"column {exc.column!r}" + (f" ({exc.reason})" if exc.reason else "") \
        if exc.column else "the data file"
    return DataError(f"the data does not fit the study schema: {what}; details are in the "
                     "node's log", column=exc.column, reason=exc.reason)


class DataStore:
    """Loads the node's data for the columns a job reads, caching by schema and file state."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._cache: dict[tuple[object, ...], Table] = {}

    def table_for(self, job: Job) -> Table:
        names = job.columns()
        columns: tuple[Column, ...] = tuple(job.schema[name] for name in names)
        try:
            stat = self.path.stat()
            state: tuple[object, ...] = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            state = ()
        key = (columns, state)
        with self._lock:
            table = self._cache.get(key)
            if table is None:
                try:
                    table = load_table(self.path, Schema({c.name: c for c in columns}), names)
                except DataError as exc:
                    _LOG.error("%s", exc)  # the full detail stays on this node
                    raise redacted(exc) from None
                self._cache = {key: table}  # keep one: the newest schema asked for
            return table
