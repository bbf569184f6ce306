"""Opening a hospital node: its data, identity, audit log and privacy ledger checked.

The gRPC server that serves it is started by :func:`securecalc.wiring.start_node`.
"""

from __future__ import annotations

import logging

from securecalc.audit.events import open_log
from securecalc.core.config import NodeConfig
from securecalc.errors import ConfigError, DataError
from securecalc.node.datastore import DataStore, FileStore
from securecalc.node.party import PartyNode
from securecalc.pins import pem_pin
from securecalc.transport.interface import ComputeSubmitter, PeerLinks
from securecalc.transport.tls import TlsFiles, certificate_name

_LOG = logging.getLogger(__name__)


def open_node(config: NodeConfig, *, links: PeerLinks,
              submitter: ComputeSubmitter) -> PartyNode:
    """The node of ``config``; DataError when its data do not fit its catalogue (or its
    sources cannot be read), ConfigError when its certificate names another node."""
    if config.data_path is not None and not config.data_path.is_file():
        raise DataError(f"{config.data_path}: data file not found")
    store = load_store(config)
    tls = TlsFiles(config.tls.ca, config.tls.cert, config.tls.key) if config.tls else None
    if tls is not None:
        cert = tls.load().cert
        named = certificate_name(cert)
        if named != config.name:
            raise ConfigError(f"{tls.cert} names {named!r}, but this node is {config.name!r}",
                              field="node.name")
        if config.pins.get(config.name) not in (None, pem_pin(cert)):
            raise ConfigError(f"the key of {tls.cert} is not the one pinned for "
                              f"{config.name}; print its pin with securecalc certs pin "
                              f"{tls.cert}", field=f"pins.{config.name}")
    audit_path = config.audit_log or config.default_folder / "audit" / f"{config.name}.jsonl"
    audit = open_log(audit_path, config.name, key=tls.key if tls else None,
                     cert=tls.cert if tls else None)
    node = PartyNode(config, store, audit, links=links, submitter=submitter)
    # a damaged ledger stops the node here, naming its file and line, with nothing written;
    # a charge cut off by a crash never ran and is moved aside
    moved = node.intake.ledger.recover()
    audit.append("node_start", listen=config.listen, data=config.data_label,
                 coordinators=list(config.coordinators), tls=tls is not None)
    if moved is not None:
        audit.append("ledger_repaired", **moved.describe())
    return node


def load_store(config: NodeConfig) -> DataStore:
    """The node's data, validated against its catalogue; a node whose data do not fit, or
    whose sources cannot be read, refuses to start: its log has the detail (the row, the
    database's message), the error names the file or source and the column only."""
    if config.data_path is None:
        return _load_sources(config)
    store = FileStore(config.data_path, config.catalogue, config.name)
    try:
        store.load()
    except DataError as exc:
        _LOG.error("%s", exc)
        what = f"column {exc.column!r}" if exc.column else "the data file"
        raise DataError(f"{config.data_path}: {what} does not fit the catalogue of "
                        f"{config.name} (details, such as the row, are in this node's log)",
                        column=exc.column) from None
    return store


def _load_sources(config: NodeConfig) -> DataStore:
    from securecalc.node.source_store import SourceStore
    from securecalc.sources import SourceError

    store = SourceStore(config.sources, config.catalogue, config.name)
    try:
        store.load()
    except SourceError as exc:
        _LOG.error("%s", exc.local_message())
        raise DataError(f"{exc} (node {config.name}; details are in this node's log)",
                        column=exc.column, reason=exc.reason) from None
    return store
