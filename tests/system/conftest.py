"""Real clusters for system tests: a throwaway CA, node and compute processes on loopback."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from securecalc.launch import ServerGroup
from securecalc.pki import init_pki
from securecalc.studyfolder import compute_toml, node_toml, study_toml, write

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")


@dataclass
class Cluster:
    root: Path
    pki: Path
    servers: ServerGroup
    addresses: dict[str, str] = field(default_factory=dict)

    def study(self, name: str, engine: str, schema_toml: str, analyses_toml: str, *,
              parties: Sequence[str] = HOSPITALS, extra_study: str = "",
              address_override: Mapping[str, str] | None = None) -> Path:
        addresses = {**self.addresses, **(address_override or {})}
        compute = ("compute", addresses["compute"]) if engine == "ckks" else None
        text = study_toml(name, engine, [(p, addresses[p]) for p in parties], self.pki,
                          schema_toml, analyses_toml, compute=compute, extra_study=extra_study)
        return write(self.root / f"{name}.toml", text)


def start_cluster(root: Path, data: Mapping[str, Path], *, extra_names: Sequence[str] = (),
                  with_compute: bool = True, env: Mapping[str, str] | None = None) -> Cluster:
    pki = root / "pki"
    names = [*data, "compute", "coordinator", *extra_names]
    init_pki(pki, names)
    (root / "logs").mkdir(exist_ok=True)
    cluster = Cluster(root, pki, ServerGroup(root / "logs"))
    try:
        for name, path in data.items():
            config = write(root / f"{name}.toml", node_toml(name, "127.0.0.1:0", path, pki))
            cluster.addresses[name] = cluster.servers.start(
                name, ["node", "serve", "--config", str(config)], env=env).address
        if with_compute:
            config = write(root / "compute.toml", compute_toml("compute", "127.0.0.1:0", pki))
            cluster.addresses["compute"] = cluster.servers.start(
                "compute", ["compute", "serve", "--config", str(config)]).address
    except BaseException:
        cluster.servers.stop_all()
        raise
    return cluster


@pytest.fixture(scope="module")
def cluster_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Start clusters that are stopped when the module's tests are done."""
    started: list[Cluster] = []

    def make(data: Mapping[str, Path], **kwargs: object) -> Cluster:
        root = tmp_path_factory.mktemp("cluster")
        cluster = start_cluster(root, data, **kwargs)  # type: ignore[arg-type]
        started.append(cluster)
        return cluster

    yield make
    for cluster in started:
        cluster.servers.stop_all()
