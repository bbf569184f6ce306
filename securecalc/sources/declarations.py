"""The ``[[source]]`` models now live in :mod:`securecalc.core.source_model` (node.toml is
parsed in core); this name is kept for existing imports."""

from securecalc.core.source_model import (
    BoolLevels,
    FhirColumn,
    FhirSource,
    FileSource,
    OmopColumn,
    OmopSource,
    PostgresConnection,
    PostgresSource,
    Source,
    Sources,
    parse_sources,
)

__all__ = ["BoolLevels", "FhirColumn", "FhirSource", "FileSource", "OmopColumn", "OmopSource",
           "PostgresConnection", "PostgresSource", "Source", "Sources", "parse_sources"]
