"""A node's ``[[source]]`` rows: checked in SQL at start and before each study, read per study.

A database has no modification time to watch, so the store keeps no rows between studies:
when a study is admitted it runs the catalogue check again (one aggregate scan in the database
or DuckDB), and the study's local statistics are then computed by the database (aggregation
pushed down); a kind that declares no statistics reads its columns in bounded batches. Detail of a
failure (the first offending row, the database's own message) goes to the node's log only;
a study is refused with a fixed text.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from securecalc.core.catalogue import check_coverage
from securecalc.core.job import Job
from securecalc.core.local import LocalData
from securecalc.core.plans import MAX_ROWS_PER_SITE
from securecalc.core.schema import Schema
from securecalc.core.source_model import Source
from securecalc.core.table import Table
from securecalc.errors import PolicyError
from securecalc.node.datastore import DataStore, unfit_message
from securecalc.sources import CheckReport, SourceError, SourceReader, open_sources
from securecalc.sources.pushdown import SourceData
from securecalc.sources.reader import BATCH_ROWS

_LOG = logging.getLogger(__name__)


def unreadable_message(node: str) -> str:
    """The fixed refusal of a node whose sources cannot be read now."""
    return f"the data sources of {node} cannot be read now; an operator must check them"


def unfit(reader: SourceReader, report: CheckReport) -> SourceError | None:
    """Why the checked rows cannot serve studies (a catalogue violation, or more rows than
    the per-site limit), or None when they can."""
    if report.violations:
        return report.violations[0].error()
    if sum(report.rows.values()) > MAX_ROWS_PER_SITE:
        return SourceError(reader.relation.sources[0], "the sources hold more rows than the "
                           f"limit of {MAX_ROWS_PER_SITE} per site",
                           detail=f"rows per source: {report.rows}")
    return None


#: admitted jobs remembered until their local phase; a job admitted and then refused (by
#: approval, say) never reaches it, so the oldest are forgotten (and checked again if needed)
ADMITTED_KEPT = 256


class SourceStore(DataStore):
    """Rows read through :class:`~securecalc.sources.SourceReader`, checked at every use."""

    def __init__(self, sources: Sequence[Source], catalogue: Schema, node: str, *,
                 batch_rows: int = BATCH_ROWS):
        super().__init__(catalogue, node)
        self.sources = tuple(sources)
        self.batch_rows = batch_rows
        self._lock = threading.Lock()
        self._admitted: OrderedDict[str, None] = OrderedDict()  # rows checked by admit()

    def admit(self, job: Job) -> None:
        """As :meth:`DataStore.admit`; the check of every row it runs also serves the job's
        local phase (:meth:`data_for`), so a study scans the rows for it once."""
        super().admit(job)
        with self._lock:
            self._admitted[job.job_id] = None
            while len(self._admitted) > ADMITTED_KEPT:
                self._admitted.popitem(last=False)

    def load(self) -> None:
        with open_sources(self.sources, self.catalogue) as reader:
            problem = unfit(reader, reader.check())
        if problem is not None:
            raise problem

    def _check_current(self) -> None:
        with self._checked():
            pass

    def _rows(self, columns: list[str]) -> Table:
        with self._checked() as reader:
            return reader.table(columns, batch_rows=self.batch_rows)

    @contextmanager
    def data_for(self, job: Job) -> Iterator[Table | LocalData]:
        """The job's statistics computed by the database (aggregation pushed down: no row
        reaches this process, except for a kind that declares no statistics), after the
        check of its rows (the one :meth:`admit` ran, or a new one)."""
        check_coverage(self.node, self.catalogue, job.schema, job.columns())
        with self._lock:
            checked = job.job_id in self._admitted
            self._admitted.pop(job.job_id, None)
        with self._checked(again=not checked) as reader:
            yield SourceData(reader.as_study(job.schema))

    @contextmanager
    def _checked(self, *, again: bool = True) -> Iterator[SourceReader]:
        """The open sources, their rows checked against the catalogue first (unless
        ``again`` is False); a fixed :class:`PolicyError` when they cannot be read or no
        longer fit, whose detail goes to this node's log only."""
        try:
            with open_sources(self.sources, self.catalogue) as reader:
                problem = unfit(reader, reader.check()) if again else None
                if problem is None:
                    yield reader
                    return
        except SourceError as exc:
            _LOG.error("%s", exc.local_message())  # the detail stays on this node
            raise PolicyError(unreadable_message(self.node)) from None
        _LOG.error("%s", problem.local_message())
        raise PolicyError(unfit_message(self.node))


__all__ = ["ADMITTED_KEPT", "SourceStore", "unfit", "unreadable_message"]
