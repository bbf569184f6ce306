"""Errors of data sources: public text for anyone, detail for the node's own log only."""

from __future__ import annotations

from securecalc.errors import DataError


class SourceError(DataError):
    """A data source cannot be read, or holds values its catalogue forbids.

    The message names the source, the column (when one is at fault) and the reason; it never
    carries a value, a count or a row, so a node may pass it on. ``detail`` may (counts, the
    first offending row): print it only in the node's own output or log.
    """

    def __init__(self, source: str, reason: str, *, column: str | None = None,
                 detail: str | None = None):
        self.source = source
        self.detail = detail
        where = f"source {source!r}" + (f", column {column!r}" if column else "")
        super().__init__(f"{where}: {reason}", column=column, reason=reason)

    def local_message(self) -> str:
        """The message with its detail, for the node's own output."""
        return f"{self}" + (f" ({self.detail})" if self.detail else "")


__all__ = ["SourceError"]
