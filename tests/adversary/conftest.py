"""Clusters for the adversary kit: real node processes with a throwaway CA, per module."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from securecalc.cluster import LocalCluster


@pytest.fixture(scope="module")
def cluster_factory(
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LocalCluster]]:
    """Start clusters that are stopped when the module's tests are done."""
    started: list[LocalCluster] = []

    def make(data: Mapping[str, Path], **kwargs: Any) -> LocalCluster:
        cluster = LocalCluster.start(tmp_path_factory.mktemp("cluster"), data, **kwargs)
        started.append(cluster)
        return cluster

    yield make
    for cluster in started:
        cluster.stop()
