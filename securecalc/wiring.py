"""Composition of the roles with the gRPC transport: what ``securecalc node serve``,
``securecalc compute serve`` and ``run_study`` start.

The roles (:mod:`securecalc.node.party`, :mod:`securecalc.compute.aggregator`, the
coordinator) know only :mod:`securecalc.transport.interface`; this module hands them the gRPC
implementation and puts them behind gRPC servers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from securecalc.transport.grpc_network import connect
from securecalc.transport.tls import TlsFiles

if TYPE_CHECKING:  # the roles are imported where they start: a coordinator needs none
    from securecalc.compute.aggregator import Aggregator
    from securecalc.core.config import ComputeConfig, NodeConfig
    from securecalc.node.party import PartyNode
    from securecalc.serving import Server

grpc_connect = connect
"""The coordinator's network over gRPC (the default of ``run_study``)."""


def grpc_node(config: NodeConfig) -> PartyNode:
    """The node of ``config``, reaching its peers and the compute node over gRPC."""
    from securecalc.node.server import open_node
    from securecalc.transport.grpc_network import GrpcComputeSubmitter, GrpcPeerLinks

    tls = TlsFiles(config.tls.ca, config.tls.cert, config.tls.key) if config.tls else None
    return open_node(config, links=GrpcPeerLinks(tls, config.name, config.pins),
                     submitter=GrpcComputeSubmitter(tls, config.name, config.pins))


def start_node(config: NodeConfig) -> tuple[Server, int]:
    """Start serving; ``config.tls is None`` means the development-only insecure mode."""
    from securecalc.transport.servicers import serve_node

    node = grpc_node(config)
    return serve_node(node, config.listen, tls=node.tls, insecure=config.tls is None)


def open_compute(config: ComputeConfig) -> Aggregator:
    """The compute node of ``config``, its audit log opened and its start recorded."""
    from securecalc.audit.events import open_log
    from securecalc.compute.aggregator import Aggregator
    from securecalc.compute.open_jobs import ComputeJobs

    tls = TlsFiles(config.tls.ca, config.tls.cert, config.tls.key) if config.tls else None
    audit_path = config.audit_log or Path("audit") / f"{config.name}.jsonl"
    audit = open_log(audit_path, config.name, key=tls.key if tls else None,
                     cert=tls.cert if tls else None)
    audit.append("compute_start", listen=config.listen, tls=tls is not None)
    return Aggregator(ComputeJobs(), audit, coordinators=config.coordinators,
                      insecure=config.tls is None, pins=config.pins)


def start_compute(config: ComputeConfig) -> tuple[Server, int]:
    """Start serving; ``config.tls is None`` means the development-only insecure mode."""
    from securecalc.transport.servicers import serve_compute

    tls = TlsFiles(config.tls.ca, config.tls.cert, config.tls.key) if config.tls else None
    return serve_compute(open_compute(config), config.listen, tls=tls,
                         insecure=config.tls is None)
