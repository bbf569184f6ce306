"""What a node's start-up and ``securecalc node check`` call: check the sources against the
catalogue, print the outcome, and read the validated rows as a Table."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from securecalc.core.catalogue import describe_column
from securecalc.core.schema import Schema
from securecalc.core.source_model import Source
from securecalc.core.table import Table
from securecalc.sources.errors import SourceError
from securecalc.sources.reader import CheckReport, open_sources

_LOG = logging.getLogger(__name__)


def check_sources(sources: Sequence[Source], catalogue: Schema) -> CheckReport:
    """Connect, probe and count every violation; :class:`SourceError` when a source cannot
    be read (the violations are in the report, not raised)."""
    with open_sources(sources, catalogue) as reader:
        return reader.check()


def check_lines(node: str, catalogue: Schema, report: CheckReport) -> list[str]:
    """``node check``'s output: rows per source, then per column its missing count and
    bounds or levels, then every violation with its first row (for the operator only)."""
    total = sum(report.rows.values())
    verdict = "fit" if report.ok else "do NOT fit"
    lines = [f"{total} rows ({', '.join(f'{s}: {n}' for s, n in report.rows.items())}) "
             f"{verdict} the catalogue of {node}",
             f"{'column':<16} {'type':<9} {'missing':>9}  bounds or levels"]
    for column in catalogue:
        lines.append(f"{column.name:<16} {column.type:<9} {report.missing[column.name]:>9}  "
                     f"{describe_column(column)}")
    lines += [v.error().local_message() for v in report.violations]
    return lines


def validated_table(sources: Sequence[Source], catalogue: Schema,
                    columns: Sequence[str] | None = None) -> Table:
    """The rows of ``columns`` (default: the whole catalogue) once every value fits.

    Raises :class:`SourceError`; its message names source and column only, its ``detail``
    (logged here at error level) has the counts and the first offending row.
    """
    with open_sources(sources, catalogue) as reader:
        try:
            reader.validate()
        except SourceError as exc:
            _LOG.error("%s", exc.local_message())
            raise
        return reader.table(columns)


__all__ = ["check_lines", "check_sources", "validated_table"]
