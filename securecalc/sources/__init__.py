"""Where a node's rows live: files, PostgreSQL, OMOP CDM and FHIR, read through SQL.

:mod:`~securecalc.core.source_model` parses node.toml's ``[[source]]`` tables;
:func:`~securecalc.sources.relation.compile_relation` turns them into one SQL relation of
the catalogue's columns; :class:`~securecalc.sources.reader.SourceReader` checks the rows
against the catalogue in SQL, counts them, reads them as a Table and runs aggregates.
"""

from securecalc.core.source_model import Source, parse_sources
from securecalc.sources.errors import SourceError
from securecalc.sources.reader import CheckReport, SourceReader, Violation, open_sources

__all__ = ["CheckReport", "Source", "SourceError", "SourceReader", "Violation", "open_sources",
           "parse_sources"]
