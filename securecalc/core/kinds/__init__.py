"""The analysis kinds, by name. Each module defines one or a few related kinds."""

from __future__ import annotations

from securecalc.core.kinds.association import ASSOCIATION
from securecalc.core.kinds.base import Kind, SearchResult, StudyOptions
from securecalc.core.kinds.moments import MOMENTS
from securecalc.core.kinds.order import ORDER
from securecalc.core.kinds.regression import REGRESSION
from securecalc.core.kinds.survival import SURVIVAL
from securecalc.core.kinds.tables import TABLES
from securecalc.core.kinds.ttest import TTESTS
from securecalc.errors import ConfigError

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (*MOMENTS, *ORDER, *TABLES, *TTESTS, *ASSOCIATION, *REGRESSION, *SURVIVAL)
}


def kind_of(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise ConfigError(f"unknown kind {name!r} (known: {', '.join(KINDS)})") from None


__all__ = ["KINDS", "Kind", "SearchResult", "StudyOptions", "kind_of"]
