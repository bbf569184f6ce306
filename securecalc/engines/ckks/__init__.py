"""CKKS engine: hospitals encrypt packed aggregates, an untrusted node adds, the key holder
decrypts the sum.

``layout`` and ``validate`` are pure Python; :class:`KeyHolder`, :func:`encrypt_packed` and
:class:`Accumulator` load TenSEAL on first use, so importing this package stays cheap.

* coordinator: ``KeyHolder.create(params)`` -> ``public_context_bytes()`` for hospitals,
  ``params_context_bytes()`` for the compute node, ``decrypt(sum, layout)`` at the end;
* hospital: ``encrypt_packed(public_context, values, layout)``;
* compute node: ``Accumulator(params_context, layout)``, ``.add(...)`` per hospital,
  ``.result()`` once.

What analyses ask of the engine, both directions (a site's packed vector, decoding the
decrypted sum, the rounds of iterative analyses): :mod:`securecalc.engines.ckks.adapter`.
Wire form of a ciphertext: see :mod:`securecalc.engines.ckks.validate`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from securecalc.engines.ckks.layout import CkksParams, Layout
from securecalc.engines.ckks.validate import (
    CiphertextRejected,
    ContextInfo,
    canonical_length,
    validate_ciphertext,
    validate_ciphertexts,
    validate_context,
)

if TYPE_CHECKING:
    from securecalc.engines.ckks.aggregate import Accumulator
    from securecalc.engines.ckks.context import KeyHolder
    from securecalc.engines.ckks.encrypt import encrypt_packed

_LAZY = {
    "Accumulator": "securecalc.engines.ckks.aggregate",
    "KeyHolder": "securecalc.engines.ckks.context",
    "encrypt_packed": "securecalc.engines.ckks.encrypt",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Accumulator",
    "CiphertextRejected",
    "CkksParams",
    "ContextInfo",
    "KeyHolder",
    "Layout",
    "canonical_length",
    "encrypt_packed",
    "validate_ciphertext",
    "validate_ciphertexts",
    "validate_context",
]
