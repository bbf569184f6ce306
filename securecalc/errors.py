"""The one exception tree of securecalc.

::

    SecureCalcError                 anything securecalc raises on purpose
    ├── ConfigError                 a configuration file or field is wrong (names file and field)
    │   ├── WhereError              a where-expression does not parse or names unknown things
    │   └── StorageError            an audit log or ledger could not be written (disk full/failing)
    ├── DataError                   a data file is missing or holds a value the schema forbids
    ├── PolicyError                 a node's policy refuses what a study asks for
    ├── PartyError                  a named party failed (unreachable, refused, died or hung)
    ├── StudyTimeout                a study did not finish within its timeout_seconds
    ├── ProtocolError               a peer sent something malformed (message kept opaque)
    └── CryptoError                 a key, certificate or ciphertext was rejected

User mistakes get precise messages; a peer's malformed input gets an opaque one so that an
attacker learns nothing from the error text.
"""

from __future__ import annotations


class SecureCalcError(Exception):
    """Base class of every error securecalc raises on purpose."""


class ConfigError(SecureCalcError):
    """A configuration file or one of its fields is wrong."""

    def __init__(self, message: str, *, path: str | None = None, field: str | None = None):
        self.path = path
        self.field = field
        where = ", ".join(p for p in (path, f"field {field!r}" if field else None) if p)
        super().__init__(f"{where}: {message}" if where else message)


class WhereError(ConfigError):
    """A where-expression is malformed or names an unknown column or level."""


class StorageError(ConfigError):
    """A durable file (audit log, privacy ledger) could not be written: the disk is full or
    failing. The append was undone; nothing was recorded."""


class DataError(SecureCalcError):
    """A data file is missing, unreadable, or holds a value the schema forbids.

    ``column`` and ``reason`` describe the fault without quoting any value or row, so that a
    node can tell the coordinator what is wrong without disclosing patient data.
    """

    def __init__(self, message: str, *, column: str | None = None, reason: str | None = None):
        self.column = column
        self.reason = reason
        super().__init__(message)


class PolicyError(SecureCalcError):
    """A node's policy refuses (part of) a study; the message says which rule and what."""


class PartyError(SecureCalcError):
    """A named party could not be reached, refused, died or hung."""

    def __init__(self, party: str, message: str):
        self.party = party
        super().__init__(f"party {party!r}: {message}")


class StudyTimeout(SecureCalcError):
    """A study did not finish within its ``timeout_seconds``; the message names the phase."""


class ProtocolError(SecureCalcError):
    """A peer sent a malformed or unexpected message. Deliberately uninformative."""


class CryptoError(SecureCalcError):
    """A certificate, key or ciphertext was rejected."""


__all__ = [
    "ConfigError",
    "CryptoError",
    "DataError",
    "PartyError",
    "PolicyError",
    "ProtocolError",
    "SecureCalcError",
    "StorageError",
    "StudyTimeout",
    "WhereError",
]
