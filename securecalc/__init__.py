"""securecalc: cross-institution statistics without exposing patient values.

The front door for a coordinator's notebook::

    import securecalc
    result = securecalc.run_study("study.toml")

Names are loaded on first use, so ``import securecalc`` stays cheap and has no side effects.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_API = {
    "run_study": "securecalc.coordinator.study",
    "load_study_config": "securecalc.core.config",
    "load_node_config": "securecalc.core.config",
    "load_compute_config": "securecalc.core.config",
    "StudyResult": "securecalc.core.results",
    "SecureCalcError": "securecalc.errors",
    "ConfigError": "securecalc.errors",
    "WhereError": "securecalc.errors",
    "DataError": "securecalc.errors",
    "PolicyError": "securecalc.errors",
    "PartyError": "securecalc.errors",
    "ProtocolError": "securecalc.errors",
    "CryptoError": "securecalc.errors",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'securecalc' has no attribute {name!r}")
    return getattr(import_module(module), name)
