"""A whole study on one machine: a fresh CA, party nodes and a compute node as processes.

Used by the demo, the benchmarks and the system tests. Every process is stopped when the
cluster is closed, also after errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from securecalc.launch import ServerGroup
from securecalc.pki import init_pki
from securecalc.studyfolder import compute_toml, node_toml, study_toml, write
from securecalc.synth import SYNTH_CATALOGUE_TOML


@dataclass
class LocalCluster:
    """Nodes for ``data`` (party name -> data file) and optionally a compute node."""

    root: Path
    pki: Path
    servers: ServerGroup
    addresses: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(cls, root: Path, data: Mapping[str, Path], *, with_compute: bool = True,
              extra_names: Sequence[str] = (), env: Mapping[str, str] | None = None,
              insecure: bool = False,
              node_extra: Mapping[str, str] | None = None,
              catalogue: str | Mapping[str, str] | None = None) -> LocalCluster:
        """``node_extra`` appends TOML (e.g. a ``[policy]`` table) to a node's config;
        ``catalogue`` is the ``[catalogue.*]`` tables of every node (a string) or per node (a
        mapping); by default, and for a node the mapping omits, what synthetic data offer."""
        root.mkdir(parents=True, exist_ok=True)
        pki = root / "pki"
        init_pki(pki, [*data, "compute", "coordinator", *extra_names], force=True)
        (root / "logs").mkdir(exist_ok=True)
        cluster = cls(root, pki, ServerGroup(root / "logs"))
        flags = ["--insecure"] if insecure else []
        try:
            for name, path in data.items():
                offered = (catalogue if isinstance(catalogue, str)
                           else (catalogue or {}).get(name, SYNTH_CATALOGUE_TOML))
                text = node_toml(name, "127.0.0.1:0", path, pki, offered)
                config = write(root / f"{name}.toml",
                               text + "\n" + (node_extra or {}).get(name, ""))
                cluster.addresses[name] = cluster.servers.start(
                    name, ["node", "serve", "--config", str(config), *flags], env=env).address
            if with_compute:
                config = write(root / "compute.toml", compute_toml("compute", "127.0.0.1:0", pki))
                cluster.addresses["compute"] = cluster.servers.start(
                    "compute", ["compute", "serve", "--config", str(config), *flags],
                    env=env).address
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def study(self, name: str, engine: str, schema_toml: str, analyses_toml: str, *,
              parties: Sequence[str] | None = None, extra_study: str = "",
              address_override: Mapping[str, str] | None = None) -> Path:
        """Write a study file for this cluster and return its path."""
        addresses = {**self.addresses, **(address_override or {})}
        parties = parties or [p for p in self.addresses if p != "compute"]
        compute = ("compute", addresses["compute"]) if engine == "ckks" else None
        text = study_toml(name, engine, [(p, addresses[p]) for p in parties], self.pki,
                          schema_toml, analyses_toml, compute=compute, extra_study=extra_study)
        return write(self.root / f"{name}.toml", text)

    def restart(self, name: str, env: Mapping[str, str] | None = None) -> str:
        """Stop party ``name``'s node and start it again from its config (a new port);
        returns the new address."""
        old = self.servers.servers[name]
        old.stop()
        flags = ["--insecure"] if "--insecure" in old.process.args else []
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
