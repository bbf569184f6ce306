"""The analysis kinds, by name. Each module defines one or a few related kinds."""

from __future__ import annotations

from securecalc.core.kinds.base import Kind, SearchResult, StudyOptions
from securecalc.core.kinds.moments import MOMENTS
from securecalc.errors import ConfigError

KINDS: dict[str, Kind] = {kind.name: kind for kind in (*MOMENTS,)}


def kind_of(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise ConfigError(f"unknown kind {name!r} (known: {', '.join(KINDS)})") from None


__all__ = ["KINDS", "Kind", "SearchResult", "StudyOptions", "kind_of"]
