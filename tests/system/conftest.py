"""Real clusters for system tests: a throwaway CA, node and compute processes on loopback."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from securecalc.cluster import LocalCluster

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")
Cluster = LocalCluster


@pytest.fixture(scope="module")
def cluster_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Start clusters that are stopped when the module's tests are done."""
    started: list[LocalCluster] = []

    def make(data: Mapping[str, Path], **kwargs: object) -> LocalCluster:
        cluster = LocalCluster.start(tmp_path_factory.mktemp("cluster"), data,
                                     **kwargs)  # type: ignore[arg-type]
        started.append(cluster)
        return cluster

    yield make
    for cluster in started:
        cluster.stop()
