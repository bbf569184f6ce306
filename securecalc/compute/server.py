"""Starting the compute node's gRPC server."""

from __future__ import annotations

from pathlib import Path

import grpc

from securecalc.audit.events import open_log
from securecalc.compute.jobs import ComputeJobs
from securecalc.compute.service import ComputeService
from securecalc.core.config import ComputeConfig
from securecalc.transport.proto import compute_pb2_grpc
from securecalc.transport.server import create_server
from securecalc.transport.tls import TlsFiles


def start_compute(config: ComputeConfig) -> tuple[grpc.Server, int]:
    """Start serving; ``config.tls is None`` means the development-only insecure mode."""
    tls = TlsFiles(config.tls.ca, config.tls.cert, config.tls.key) if config.tls else None
    audit_path = config.audit_log or Path("audit") / f"{config.name}.jsonl"
    audit = open_log(audit_path, config.name, key=tls.key if tls else None,
                     cert=tls.cert if tls else None)
    audit.append("compute_start", listen=config.listen, tls=tls is not None)
    service = ComputeService(ComputeJobs(), audit, coordinators=config.coordinators,
                             insecure=config.tls is None)
    return create_server(
        config.listen, tls=tls, max_workers=32,
        register=lambda server: compute_pb2_grpc.add_ComputeNodeServicer_to_server(service,
                                                                                   server),
        services=("securecalc.v1.ComputeNode",),
    )
