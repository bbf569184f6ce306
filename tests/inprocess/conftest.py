"""Parties of a study as objects of this process, over the in-memory network: the roles'
own code (policy, gates, release, audit, failures) without servers, TLS or sockets."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from securecalc.audit.events import open_log
from securecalc.compute.aggregator import Aggregator
from securecalc.compute.open_jobs import ComputeJobs
from securecalc.coordinator.study import run_study
from securecalc.core.config import (
    DEFAULT_COMPUTE,
    StudyConfig,
    load_node_config,
    load_study_config,
)
from securecalc.core.results import StudyResult
from securecalc.roles import Role
from securecalc.studyfolder import node_toml, study_toml, write
from securecalc.synth import SYNTH_CATALOGUE_TOML
from securecalc.transport.interface import Caller
from securecalc.transport.memory import COORDINATOR, MemoryNetwork

UNUSED_PKI = Path("/nonexistent-pki")  # in-process parties run without TLS


class InProcessStudy:
    """Hospital nodes (and a compute node) of one process, and studies run against them.

    ``catalogue``: the ``[catalogue.*]`` tables of every node (a string) or per node (a
    mapping; a node it omits offers what synthetic data offer)."""

    def __init__(self, root: Path, data: Mapping[str, Path], *,
                 node_extra: Mapping[str, str] | None = None,
                 rosters: Mapping[str, Sequence[str]] | None = None,
                 catalogue: str | Mapping[str, str] = SYNTH_CATALOGUE_TOML,
                 roles: Mapping[str, Role] | None = None):
        self.root = root
        self.roles = dict(roles or {})
        self.network = MemoryNetwork()
        self.addresses: dict[str, str] = {}
        for index, (name, path) in enumerate(data.items()):
            self.addresses[name] = f"127.0.0.1:{7101 + index}"
            offered = (catalogue if isinstance(catalogue, str)
                       else catalogue.get(name, SYNTH_CATALOGUE_TOML))
            text = node_toml(name, self.addresses[name], path, UNUSED_PKI,
                             (rosters or {}).get(name, list(data)), offered)
            config = write(root / f"{name}.toml",
                           text + "\n" + (node_extra or {}).get(name, ""))
            self.network.add_node(load_node_config(config, insecure=True),
                                  self.roles.get(name, Role.HOSPITAL))
        audit = open_log(root / "audit" / f"{DEFAULT_COMPUTE}.jsonl", DEFAULT_COMPUTE,
                         key=None, cert=None)
        self.network.add_compute(DEFAULT_COMPUTE, Aggregator(
            ComputeJobs(), audit, coordinators=("coordinator",), insecure=True))
        self.addresses[DEFAULT_COMPUTE] = "127.0.0.1:7100"

    def restart(self, name: str) -> None:
        """Open node ``name`` again from its config, as a restarted ``node serve`` would."""
        self.network.add_node(load_node_config(self.root / f"{name}.toml", insecure=True),
                              self.roles.get(name, Role.HOSPITAL))

    def study(self, name: str, engine: str, schema_toml: str, analyses_toml: str, *,
              parties: Sequence[str] | None = None, extra_study: str = "") -> StudyConfig:
        parties = parties or [p for p in self.addresses if p != DEFAULT_COMPUTE]
        compute = ((DEFAULT_COMPUTE, self.addresses[DEFAULT_COMPUTE]) if engine == "ckks"
                   else None)
        text = study_toml(name, engine, [(p, self.addresses[p]) for p in parties], UNUSED_PKI,
                          schema_toml, analyses_toml, compute=compute,
                          extra_study=extra_study)
        text += f'\n[audit]\nlog = "{self.root / "audit" / "coordinator.jsonl"}"\n'
        return load_study_config(write(self.root / f"{name}.study.toml", text), insecure=True)

    def run(self, study: StudyConfig, *, as_caller: Caller = COORDINATOR) -> StudyResult:
        """Run ``study`` as the coordinator (or as ``as_caller``: another certificate)."""
        return run_study(study, connect=lambda tls, clock: self.network.connect(
            tls, clock, caller=as_caller))

    def events(self, party: str, event: str | None = None) -> list[dict[str, Any]]:
        """The audit records of ``party`` (of one kind)."""
        lines = (self.root / "audit" / f"{party}.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines]
        return [r for r in records if event is None or r["event"] == event]


@pytest.fixture
def in_process(tmp_path: Path) -> Iterator[Any]:
    """A factory of :class:`InProcessStudy`: the first under ``tmp_path``, any further one in
    a folder of its own there (its own configs and audit logs)."""
    made: list[InProcessStudy] = []

    def make(data: Mapping[str, Path], **kwargs: Any) -> InProcessStudy:
        root = tmp_path / f"nodes-{len(made)}" if made else tmp_path
        made.append(InProcessStudy(root, data, **kwargs))
        return made[-1]

    yield make
