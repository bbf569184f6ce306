"""The analysis kinds, by name. Each module defines one or a few related kinds.

The built-in kinds are registered here; another kind is added with :func:`register` (and
removed with :func:`unregister`) without editing this module.
"""

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

#: every registered kind by name, built-in kinds first in catalogue order
KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Make ``kind`` known by its name; a name is registered once."""
    if kind.name in KINDS:
        raise ValueError(f"a kind named {kind.name!r} is already registered")
    KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Forget the kind called ``name`` (for kinds registered by tests or plug-ins)."""
    KINDS.pop(name, None)


def kind_of(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise ConfigError(f"unknown kind {name!r} (known: {', '.join(KINDS)})") from None


for _kind in (*MOMENTS, *ORDER, *TABLES, *TTESTS, *ASSOCIATION, *REGRESSION, *SURVIVAL):
    register(_kind)

__all__ = ["KINDS", "Kind", "SearchResult", "StudyOptions", "kind_of", "register",
           "unregister"]
