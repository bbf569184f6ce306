"""Fuzz the TOML loaders with damaged example files and random documents.

Documents come from the valid files in ``examples/``: parsed and mutated as data, then written
back with a small TOML writer (inline tables), or mutated as raw text and bytes. Every loader
must return a config or raise ConfigError.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securecalc.core.config import load_compute_config, load_node_config, load_study_config
from tests.fuzz._harness import MiB, bounded_memory, fuzz, outcome
from tests.fuzz._mutate import json_values, mutated_bytes, mutated_json, mutated_text

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
Loader = Callable[..., Any]
LOADERS: dict[str, Loader] = {
    path.name: (load_study_config if path.name.startswith("study") else
                load_compute_config if path.name == "compute.toml" else load_node_config)
    for path in sorted(EXAMPLES.glob("*.toml"))}
TEXTS = {name: (EXAMPLES / name).read_text() for name in LOADERS}
DOCUMENTS = {name: tomllib.loads(text) for name, text in TEXTS.items()}


def _string(value: str) -> str:
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    """One TOML value on one line (tables inline); None has no TOML form and is dropped."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") \
            if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_string(str(k))} = {toml_value(v)}"
                               for k, v in value.items() if v is not None) + "}"
    raise TypeError(type(value))


def toml_document(data: Any) -> str:
    """A TOML document holding ``data`` (a non-table becomes the value of key ``value``)."""
    if not isinstance(data, dict):
        data = {"value": data}
    return "".join(f"{_string(str(k))} = {toml_value(v)}\n" for k, v in data.items()
                   if v is not None)


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, bytes]:
    """(example name, file content): the example damaged as data, text or bytes."""
    name = draw(st.sampled_from(sorted(LOADERS)))
    how = draw(st.sampled_from(["data", "data", "data", "text", "bytes", "random", "deep"]))
    if how == "deep":  # a value nested deeper than any real file
        opener = draw(st.sampled_from(["[", "{a = "]))
        return name, (f"x = {opener * draw(st.sampled_from([100, 5000, 100_000]))}\n"
                      + TEXTS[name]).encode()
    if how == "data":
        text = toml_document(draw(mutated_json(DOCUMENTS[name])))
        assert isinstance(tomllib.loads(text), dict)  # the writer itself is right
        return name, text.encode()
    if how == "text":
        return name, draw(mutated_text(TEXTS[name], "[]{}=\"'.,#\n -_0123456789abcdefxyz"))\
            .encode("utf-8", "surrogatepass")
    if how == "bytes":
        return name, draw(mutated_bytes(TEXTS[name].encode()))
    return name, toml_document(draw(st.dictionaries(st.text(max_size=8), json_values,
                                                    max_size=6))).encode()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("configs")


@fuzz(300)
@given(document=documents(), insecure=st.booleans())
def test_config_files(folder: Path, document: tuple[str, bytes], insecure: bool) -> None:
    """Each loader returns a config or raises ConfigError, whatever the file holds."""
    name, content = document
    path = folder / name
    path.write_bytes(content)
    with bounded_memory(64 * MiB):
        outcome(lambda: LOADERS[name](path, insecure=insecure))


def test_examples_load() -> None:
    """The seeds are valid, so damaged copies start from files that reach every check."""
    for name, loader in LOADERS.items():
        loader(EXAMPLES / name, insecure=True)
        loader(EXAMPLES / name)
