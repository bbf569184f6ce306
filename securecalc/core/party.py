"""A party of a study: a hospital node's certificate name and the address it listens on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Party:
    name: str
    address: str
