"""The read-only query check now lives in :mod:`securecalc.core.readonly_sql`; this name is
kept for existing imports."""

from securecalc.core.readonly_sql import check_select_only

__all__ = ["check_select_only"]
