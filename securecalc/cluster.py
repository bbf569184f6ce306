"""A whole study on one machine: a fresh CA, party nodes and a compute node as processes.

Used by the demo, the benchmarks and the system tests. Every process is stopped when the
cluster is closed, also after errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from securecalc.core.config import DEFAULT_COMPUTE
from securecalc.launch import ServerGroup
from securecalc.pki import init_pki
from securecalc.studyfolder import (
    compute_toml,
    node_sources_toml,
    node_toml,
    study_toml,
    toml_value,
    write,
)
from securecalc.synth import SYNTH_CATALOGUE_TOML

#: a node's rows: a data file, or its ``[[source]]`` tables in parsed form
NodeData = Path | Sequence[Mapping[str, Any]]


@dataclass
class LocalCluster:
    """Nodes for ``data`` (party name -> data file or ``[[source]]`` tables) and optionally a
    compute node."""

    root: Path
    pki: Path
    servers: ServerGroup
    insecure: bool = False
    env: Mapping[str, str] | None = None
    addresses: dict[str, str] = field(default_factory=dict)
    #: the coordinators every node and the compute node accept (each has a certificate)
    coordinators: tuple[str, ...] = ("coordinator",)

    @classmethod
    def start(cls, root: Path, data: Mapping[str, NodeData], *, with_compute: bool = True,
              extra_names: Sequence[str] = (), env: Mapping[str, str] | None = None,
              insecure: bool = False, node_extra: Mapping[str, str] | None = None,
              rosters: Mapping[str, Sequence[str]] | None = None,
              ckks: str | None = None,
              catalogue: str | Mapping[str, str] | None = None,
              coordinators: Sequence[str] = ("coordinator",)) -> LocalCluster:
        """Start a node per hospital in ``data`` (and a compute node).

        ``extra_names``: more hospital certificates, in no node's roster. ``node_extra``
        appends TOML (e.g. a ``[policy]`` table) to a node's config. ``rosters``: a node's
        ``hospitals`` (default: every hospital of ``data``). ``ckks``: every node's
        ``[policy] ckks`` (default: the node's default). ``catalogue``: the ``[catalogue.*]``
        tables of every node (a string) or per node (a mapping); by default, and for a node
        the mapping omits, what synthetic data offer. ``coordinators``: the coordinator
        certificates made, which every node and the compute node list.
        """
        root.mkdir(parents=True, exist_ok=True)
        pki = root / "pki"
        init_pki(pki, hospitals=[*data, *extra_names], compute=["compute"],
                 coordinators=list(coordinators), force=True)
        (root / "logs").mkdir(exist_ok=True)
        cluster = cls(root, pki, ServerGroup(root / "logs"), insecure=insecure, env=env,
                      coordinators=tuple(coordinators))
        try:
            for name, path in data.items():
                extra = (node_extra or {}).get(name, "")
                if ckks is not None:
                    extra = _with_policy(extra, f'ckks = "{ckks}"')
                offered = (catalogue if isinstance(catalogue, str)
                           else (catalogue or {}).get(name, SYNTH_CATALOGUE_TOML))
                cluster.start_node(name, path, (rosters or {}).get(name, list(data)), extra,
                                   catalogue=offered)
            if with_compute:
                config = write(root / "compute.toml", cluster._listing_coordinators(
                    compute_toml("compute", "127.0.0.1:0", pki), "[compute]\n"))
                cluster.addresses["compute"] = cluster.servers.start(
                    "compute", ["compute", "serve", "--config", str(config), *cluster._flags],
                    env=env).address
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def start_node(self, name: str, data: NodeData, hospitals: Sequence[str],
                   extra: str = "", *, catalogue: str = SYNTH_CATALOGUE_TOML) -> str:
        """Start a party node ``name`` with this cluster's certificate of that name (whatever
        its role), the roster ``hospitals`` and the ``[catalogue.*]`` tables ``catalogue``;
        returns its address."""
        text = (node_toml(name, "127.0.0.1:0", data, self.pki, hospitals, catalogue)
                if isinstance(data, Path) else
                node_sources_toml(name, "127.0.0.1:0", data, self.pki, hospitals, catalogue))
        config = write(self.root / f"{name}.toml",
                       self._listing_coordinators(text, "[node]\n") + "\n" + extra)
        self.addresses[name] = self.servers.start(
            name, ["node", "serve", "--config", str(config), *self._flags],
            env=self.env).address
        return self.addresses[name]

    def _listing_coordinators(self, text: str, table: str) -> str:
        """``text`` with this cluster's coordinators in its ``table`` (unless the default)."""
        if self.coordinators == ("coordinator",):
            return text
        return text.replace(table, f"{table}coordinators = {toml_value(list(self.coordinators))}\n",
                            1)

    @property
    def _flags(self) -> list[str]:
        return ["--insecure"] if self.insecure else []

    def study(self, name: str, engine: str, schema_toml: str, analyses_toml: str, *,
              parties: Sequence[str] | None = None, extra_study: str = "",
              address_override: Mapping[str, str] | None = None,
              compute: str = DEFAULT_COMPUTE, coordinator: str = "coordinator") -> Path:
        """Write a study file for this cluster and return its path (``compute``: the name the
        study gives its compute node, at that name's address; ``coordinator``: whose
        certificate runs it)."""
        addresses = {**self.addresses, **(address_override or {})}
        parties = parties or [p for p in self.addresses if p != "compute"]
        compute_node = (compute, addresses[compute]) if engine == "ckks" else None
        text = study_toml(name, engine, [(p, addresses[p]) for p in parties], self.pki,
                          schema_toml, analyses_toml, compute=compute_node,
                          extra_study=extra_study, coordinator=coordinator)
        return write(self.root / f"{name}.toml", text)

    def restart(self, name: str, env: Mapping[str, str] | None = None) -> str:
        """Stop party ``name``'s node and start it again from its config (a new port);
        returns the new address."""
        old = self.servers.servers[name]
        old.stop()
        args = old.process.args
        flags = ["--insecure"] if isinstance(args, list) and "--insecure" in args else []
        self.addresses[name] = self.servers.start(
            name, ["node", "serve", "--config", str(self.root / f"{name}.toml"), *flags],
            env=env).address
        return self.addresses[name]

    def stop(self) -> None:
        self.servers.stop_all()

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _with_policy(extra: str, line: str) -> str:
    """``extra`` TOML with ``line`` in its ``[policy]`` table (added when it has none)."""
    if "[policy]\n" in extra:
        return extra.replace("[policy]\n", f"[policy]\n{line}\n", 1)
    return f"{extra}\n[policy]\n{line}\n"
