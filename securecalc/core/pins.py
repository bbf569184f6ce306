"""Key pins in configuration: ``[pins]`` maps a party's name to its key's fingerprint.

A pin is ``sha256:`` and the 64 lowercase hex digits of the SHA-256 of the party's
SubjectPublicKeyInfo (DER), as ``securecalc certs pin``, ``certs request`` and ``certs sign``
print it. A pin binds a name to one key whoever the study CA is: a second certificate for
the same name, with another key, is refused wherever the name is pinned. Computing a pin
needs cryptography and lives in :mod:`securecalc.pins`; this module only checks the text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import PlainValidator

from securecalc.core.model import invalid

PIN_PREFIX = "sha256:"
PIN_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")
PIN_COMMAND = "securecalc certs pin <its certificate or CSR>"
"""The command that prints a party's pin, for messages."""


def pin_problem(value: Any) -> str | None:
    """Why ``value`` is not a pin, or None."""
    if not isinstance(value, str) or not PIN_PATTERN.fullmatch(value.strip().lower()):
        return (f"must be a key pin {PIN_PREFIX}<64 hex digits> (print one with "
                f"{PIN_COMMAND}), got {value!r}")
    return None


def normal_pin(value: str) -> str:
    """``value`` in its canonical form (lowercase, no surrounding blanks)."""
    return value.strip().lower()


def _pin_table(value: Any) -> dict[str, str]:
    """``[pins]``: ``"<party name>" = "sha256:<hex>"`` lines."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise invalid('must be a table of "<party name>" = "sha256:<64 hex digits>" lines')
    table: dict[str, str] = {}
    for name, pin in value.items():
        problem = pin_problem(pin)
        if problem:
            raise invalid(problem, at=(str(name),))
        table[str(name)] = normal_pin(pin)
    return table


PinTable = Annotated[dict[str, str], PlainValidator(_pin_table)]
"""A ``[pins]`` table, validated and normalised (an absent table is empty)."""


def missing_pins(names: tuple[str, ...] | list[str], pins: Mapping[str, str]) -> list[str]:
    """The names of ``names`` without a pin, in order."""
    return [n for n in names if n not in pins]


__all__ = ["PIN_COMMAND", "PIN_PATTERN", "PIN_PREFIX", "PinTable", "missing_pins", "normal_pin",
           "pin_problem"]
