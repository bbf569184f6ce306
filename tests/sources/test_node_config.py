"""node.toml: ``[[source]]`` tables beside ``[catalogue]``; ``[data] path`` still works; every
error names node.toml and the field."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from securecalc.core.config import load_node_config
from securecalc.core.source_model import FileSource, OmopSource, parse_sources
from securecalc.errors import ConfigError
from securecalc.sources.synthetic import synth_omop_source
from securecalc.studyfolder import node_toml
from tests.sources.nodefiles import write_node

CSV = {"kind": "file", "name": "cohort", "format": "csv", "delimiter": ";", "path": "a.csv"}


def test_sources_are_parsed_with_paths_relative_to_node_toml(tmp_path: Path) -> None:
    omop = synth_omop_source("omop", duckdb=Path("cdm.duckdb"))
    config = load_node_config(write_node(tmp_path, [CSV, omop]), insecure=True)
    assert config.data_path is None
    file, cdm = config.sources
    assert isinstance(file, FileSource) and file.path == tmp_path / "a.csv"
    assert file.delimiter == ";"
    assert isinstance(cdm, OmopSource) and cdm.duckdb == tmp_path / "cdm.duckdb"
    assert config.data_label == "sources cohort, omop"
    assert config.catalogue.names()[0] == "age"


def test_data_path_still_means_one_file(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(node_toml("hospital-a", "127.0.0.1:0", Path("a.csv"), tmp_path,
                              ["hospital-a"]))
    config = load_node_config(path, insecure=True)
    assert config.data_path == (tmp_path / "a.csv").resolve() and config.sources == ()


@pytest.mark.parametrize(("source", "field", "message"), [
    ({**CSV, "delimiter": None}, "source[0]", "needs its delimiter"),
    ({**CSV, "kind": "postgres", "host": "db", "database": "d", "user": "u", "table": "t",
      "password": "x", "format": None, "path": None}, "source[0]", "must not be written"),
    ({"kind": "postgres", "name": "q", "host": "db", "database": "d", "user": "u",
      "query": "DELETE FROM cohort"}, "source[0].query", "SELECT"),
    ({**CSV, "colour": "red"}, "source[0].colour", ""),
])
def test_a_bad_source_names_node_toml_and_the_field(tmp_path: Path, source: dict[str, object],
                                                   field: str, message: str) -> None:
    source = {k: v for k, v in source.items() if v is not None}
    path = write_node(tmp_path, [source])
    with pytest.raises(ConfigError) as caught:
        load_node_config(path, insecure=True)
    assert caught.value.path == str(path)
    assert caught.value.field == field
    assert message in str(caught.value)


def test_data_and_sources_are_exclusive_and_one_is_required(tmp_path: Path) -> None:
    both = write_node(tmp_path, [CSV])
    both.write_text(both.read_text() + '\n[data]\npath = "a.csv"\n')
    with pytest.raises(ConfigError, match="either as \\[data\\] path"):
        load_node_config(both, insecure=True)
    neither = tmp_path / "neither.toml"
    text = node_toml("hospital-a", "127.0.0.1:0", Path("a.csv"), tmp_path, ["hospital-a"])
    neither.write_text(text.replace('[data]\npath = "a.csv"\n', ""))
    with pytest.raises(ConfigError, match="missing table \\[data\\] or \\[\\[source\\]\\]"):
        load_node_config(neither, insecure=True)


def test_the_readme_source_examples_parse() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### Data sources"):readme.index("### compute.toml")]
    blocks = re.findall(r"```toml\n(.*?)```", section, re.DOTALL)
    kinds = [s.kind for block in blocks
             for s in parse_sources(tomllib.loads(block)["source"], path="/n/node.toml")]
    assert kinds == ["file", "postgres", "omop", "fhir"]
