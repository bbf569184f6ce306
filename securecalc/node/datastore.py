"""A node's rows, validated against its catalogue, and the studies' view of them.

Two stores share one interface (:class:`DataStore`): :class:`FileStore` for ``[data] path``
(one file loaded whole, validated when the node starts and again whenever the file changes:
its modification time or size) and :class:`~securecalc.node.source_store.SourceStore` for
``[[source]]`` tables (validated in SQL at start and before each study). A study never
triggers a row-level message: :meth:`DataStore.admit` checks the study against the catalogue,
and :meth:`DataStore.table_for` hands out validated rows. What a refusal says therefore never
depends on the rows; the detail of data that do not fit stays in the node's log.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from pathlib import Path

from securecalc.core.catalogue import check_coverage, study_table
from securecalc.core.job import Job
from securecalc.core.plans import MAX_ROWS_PER_SITE
from securecalc.core.schema import Schema
from securecalc.core.table import Table, load_table
from securecalc.errors import DataError, PolicyError

_LOG = logging.getLogger(__name__)

FileState = tuple[int, int] | None


def validated(path: Path, catalogue: Schema) -> Table:
    """Every catalogue column of the file, checked; :class:`DataError` (full detail) if not."""
    table = load_table(path, catalogue)
    if table.n_rows > MAX_ROWS_PER_SITE:
        raise DataError(f"{path}: {table.n_rows} rows exceed the limit of {MAX_ROWS_PER_SITE} "
                        "per site")
    return table


def unfit_message(node: str) -> str:
    """The fixed refusal of a node whose data stopped fitting its catalogue."""
    return f"the data of {node} no longer fit its catalogue; an operator must fix them"


class DataStore(ABC):
    """The node's validated rows, as studies see them."""

    def __init__(self, catalogue: Schema, node: str):
        self.catalogue = catalogue
        self.node = node

    @abstractmethod
    def load(self) -> None:
        """Validate every row now (at start); :class:`DataError` whose local detail may name
        a row (the caller logs it and reports the column only)."""

    @abstractmethod
    def _check_current(self) -> None:
        """:class:`PolicyError` (a fixed text) unless the rows fit the catalogue now."""

    @abstractmethod
    def _rows(self, columns: list[str]) -> Table:
        """The validated rows of ``columns``, typed as the catalogue declares them."""

    def admit(self, job: Job) -> None:
        """Refuse (:class:`PolicyError`) a job the catalogue does not cover, or any job while
        the data do not fit."""
        check_coverage(self.node, self.catalogue, job.schema, job.columns())
        self._check_current()

    def table_for(self, job: Job) -> Table:
        """The columns ``job`` reads, as its schema declares them (after :meth:`admit`)."""
        columns = list(job.columns())
        check_coverage(self.node, self.catalogue, job.schema, columns)
        return study_table(self._rows(columns), job.schema, columns)


class FileStore(DataStore):
    """``[data] path``: the validated file in memory, revalidated when the file changes."""

    def __init__(self, path: Path, catalogue: Schema, node: str):
        super().__init__(catalogue, node)
        self.path = path
        self._lock = threading.Lock()
        self._state: FileState = None
        self._table: Table | None = None

    def load(self) -> None:
        with self._lock:
            state = self._file_state()
            self._table, self._state = validated(self.path, self.catalogue), state

    def current(self) -> Table:
        """The validated table; :class:`PolicyError` (a fixed text) once it no longer fits."""
        with self._lock:
            state = self._file_state()
            if state is None or state != self._state:
                self._state, self._table = state, None
                try:
                    self._table = validated(self.path, self.catalogue)
                except DataError as exc:
                    _LOG.error("%s", exc)  # the detail stays on this node
            if self._table is None:
                raise PolicyError(unfit_message(self.node))
            return self._table

    def _check_current(self) -> None:
        self.current()  # reads no row of a fitting file that did not change

    def _rows(self, columns: list[str]) -> Table:
        return self.current()

    def _file_state(self) -> FileState:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size
