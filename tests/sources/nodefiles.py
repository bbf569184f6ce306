"""node.toml files with ``[[source]]`` tables, and the ``securecalc`` command run on them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from securecalc.studyfolder import node_sources_toml
from securecalc.synth import SYNTH_CATALOGUE_TOML


def write_node(folder: Path, sources: Sequence[Mapping[str, Any]], *, name: str = "hospital-a",
               catalogue: str = SYNTH_CATALOGUE_TOML) -> Path:
    """A node.toml reading ``sources`` (parsed form)."""
    path = folder / f"{name}.toml"
    path.write_text(node_sources_toml(name, "127.0.0.1:0", sources, folder / "pki", [name],
                                      catalogue))
    return path


def securecalc(*args: str, env: Mapping[str, str] | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "securecalc", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})
