"""Configuration files, parsed once at the edge into frozen dataclasses.

Relative paths inside a file are resolved against that file's directory, so a study folder
can be moved as a whole. Every error names the file and the field at fault.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from securecalc.core.analyses import Analysis, parse_analyses
from securecalc.core.catalogue import catalogue_from_mapping
from securecalc.core.kinds import kind_of
from securecalc.core.limits import NAME_CHARS, PARTIES, STUDY_FILE, Limit
from securecalc.core.policy import Policy, Roster, policy_from_mapping
from securecalc.core.schema import Schema, schema_from_mapping
from securecalc.errors import ConfigError

ENGINES = ("mpc", "ckks")
MIN_PARTIES = {"mpc": 3, "ckks": 2}
DEFAULT_COORDINATORS = ("coordinator",)
DEFAULT_COMPUTE = "compute"


@dataclass(frozen=True)
class TlsConfig:
    """A party's identity: the study CA, its certificate and its private key."""

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class NodeConfig:
    name: str
    listen: str
    data_path: Path
    tls: TlsConfig | None
    #: the hospitals this node computes with (its own name among them); never from a job
    hospitals: tuple[str, ...]
    coordinators: tuple[str, ...] = DEFAULT_COORDINATORS
    #: the only compute node this node sends CKKS ciphertexts to
    compute: str = DEFAULT_COMPUTE
    audit_log: Path | None = None
    policy: Policy = field(default_factory=Policy)
    approvals_dir: Path | None = None
    #: the differential-privacy ledger (see :mod:`securecalc.node.privacy_ledger`)
    privacy_ledger: Path | None = None
    #: the columns this node offers, with published bounds and levels
    #: (see :mod:`securecalc.core.catalogue`)
    catalogue: Schema = field(default_factory=Schema)

    @property
    def roster(self) -> Roster:
        return Roster(me=self.name, hospitals=frozenset(self.hospitals), compute=self.compute)


@dataclass(frozen=True)
class ComputeConfig:
    name: str
    listen: str
    tls: TlsConfig | None
    coordinators: tuple[str, ...] = DEFAULT_COORDINATORS
    audit_log: Path | None = None


@dataclass(frozen=True)
class Party:
    name: str
    address: str


@dataclass(frozen=True)
class StudyConfig:
    name: str
    engine: str
    parties: tuple[Party, ...]
    schema: Schema
    analyses: tuple[Analysis, ...]
    tls: TlsConfig | None
    compute: Party | None = None
    timeout_seconds: float = 120.0
    peer_timeout_seconds: float = 15.0
    min_cell_count: int = 5
    #: analyses whose cohort (n) is smaller are withheld, decided inside the secure computation
    min_cohort: int = 10
    #: fractional bits kept of each decrypted (normalised) CKKS value; the rest, where the
    #: decryption noise lives, is rounded away before anything is released
    ckks_release_bits: int = 20
    audit_log: Path | None = None


class _Reader:
    """Typed access to one parsed TOML file, with errors naming file and field."""

    def __init__(self, path: Path, data: Mapping[str, Any]):
        self.path = path
        self.data = data

    def error(self, message: str, field: str | None = None) -> ConfigError:
        return ConfigError(message, path=str(self.path), field=field)

    def table(self, name: str, *, required: bool = True) -> Mapping[str, Any]:
        value = self.data.get(name)
        if value is None:
            if required:
                raise self.error(f"missing table [{name}]")
            return {}
        if not isinstance(value, Mapping):
            raise self.error("must be a table", name)
        return value

    def string(self, table: Mapping[str, Any], prefix: str, key: str,
               default: str | None = None) -> str:
        value = table.get(key, default)
        if value is None:
            raise self.error("is required", f"{prefix}.{key}")
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"must be a non-empty string, got {value!r}", f"{prefix}.{key}")
        return value

    def number(self, table: Mapping[str, Any], prefix: str, key: str, default: float) -> float:
        value = table.get(key, default)
        if (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
                or not math.isfinite(value)):
            raise self.error(f"must be a positive number, got {value!r}", f"{prefix}.{key}")
        return float(value)

    def path_of(self, table: Mapping[str, Any], prefix: str, key: str) -> Path:
        value = self.string(table, prefix, key)
        try:
            return (self.path.parent / value).resolve()
        except (ValueError, OSError, RuntimeError) as exc:  # a NUL byte, a symlink loop
            raise self.error(f"is not a usable path ({exc})", f"{prefix}.{key}") from None

    def names(self, table: Mapping[str, Any], prefix: str, key: str,
              default: tuple[str, ...]) -> tuple[str, ...]:
        value = table.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error("must be a list of names", f"{prefix}.{key}")
        return tuple(value)

    def coordinators(self, table: Mapping[str, Any], prefix: str) -> tuple[str, ...]:
        """``coordinators``: the certificate names allowed to start work; never empty."""
        names = self.names(table, prefix, "coordinators", DEFAULT_COORDINATORS)
        if not names:
            raise self.error(
                "must list at least one coordinator (a certificate name allowed to start "
                "studies): with none, no one could start a study here; omit the key for the "
                f"default {list(DEFAULT_COORDINATORS)}", f"{prefix}.coordinators")
        return names

    def tls(self, *, insecure: bool) -> TlsConfig | None:
        if insecure:
            return None
        table = self.table("tls")
        self.known_keys(table, "tls", {"ca", "cert", "key"})
        return TlsConfig(*(self.path_of(table, "tls", key) for key in ("ca", "cert", "key")))

    def audit_log(self, name: str) -> Path:
        """``[audit] log``, by default ``audit/<name>.jsonl`` beside the file."""
        table = self.table("audit", required=False)
        self.known_keys(table, "audit", {"log"})
        if "log" in table:
            return self.path_of(table, "audit", "log")
        return (self.path.parent / "audit" / f"{name}.jsonl").resolve()

    def known_keys(self, table: Mapping[str, Any], prefix: str, allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                raise self.error(f"unknown key (allowed: {', '.join(sorted(allowed))})",
                                 f"{prefix}.{key}" if prefix else key)


def _read(path: str | Path, max_bytes: Limit | None = None) -> _Reader:
    """Parse a TOML file; with ``max_bytes``, refuse a larger file before parsing it."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            if max_bytes is not None:
                max_bytes.check(os.fstat(handle.fileno()).st_size, path=str(path))
                raw = handle.read(max_bytes.value + 1)
                max_bytes.check(len(raw), path=str(path))
            else:
                raw = handle.read()
        data = tomllib.loads(raw.decode())
    except FileNotFoundError:
        raise ConfigError("file not found", path=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(path)) from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ConfigError("not valid TOML: values nested too deeply", path=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError("not valid UTF-8 (TOML files must be UTF-8)", path=str(path)) from None
    return _Reader(path, data)


def check_address(address: str, *, path: str | None = None, field: str | None = None) -> str:
    """Accept ``host:port`` with a port in 0..65535."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ConfigError(f"address must be host:port, got {address!r}", path=path, field=field)
    return address


def _data_table(reader: _Reader) -> Mapping[str, Any]:
    table = reader.table("data")
    reader.known_keys(table, "data", {"path"})
    return table


def _catalogue(reader: _Reader) -> Schema:
    """``[catalogue.<column>]`` tables: required, so that a node publishes what it offers."""
    if "catalogue" not in reader.data:
        raise reader.error(
            "missing table [catalogue]: add one [catalogue.<column>] table per column this "
            "node offers, with the keys of a study's [schema.<column>] (type = int, float or "
            "category; min and max, or levels); the node checks its data against them when it "
            "starts, and they are published to coordinators", "catalogue")
    return catalogue_from_mapping(reader.table("catalogue"), path=str(reader.path))


def _hospitals(reader: _Reader, node: Mapping[str, Any], name: str) -> tuple[str, ...]:
    """``[node] hospitals``: required, unique, and naming this node."""
    if "hospitals" not in node:
        raise reader.error("is required: list the hospitals this node computes with, its own "
                           f"name among them (e.g. [\"{name}\", ...])", "node.hospitals")
    hospitals = reader.names(node, "node", "hospitals", ())
    if len(set(hospitals)) != len(hospitals):
        raise reader.error("lists a hospital twice", "node.hospitals")
    if name not in hospitals:
        raise reader.error(f"must include this node's own name {name!r}", "node.hospitals")
    return hospitals


def load_node_config(path: str | Path, *, insecure: bool = False) -> NodeConfig:
    """Parse node.toml: ``[node] name, listen, hospitals, compute, coordinators``,
    ``[data] path``, ``[tls]``, ``[catalogue]``, ``[policy]``, ``[audit]``."""
    reader = _read(path)
    reader.known_keys(reader.data, "", {"node", "data", "tls", "audit", "policy", "catalogue"})
    node = reader.table("node")
    reader.known_keys(node, "node", {"name", "listen", "coordinators", "hospitals", "compute"})
    listen = reader.string(node, "node", "listen")
    check_address(listen, path=str(reader.path), field="node.listen")
    name = reader.string(node, "node", "name")
    data_path = reader.path_of(_data_table(reader), "data", "path")
    tls = reader.tls(insecure=insecure)
    hospitals = _hospitals(reader, node, name)
    coordinators = reader.coordinators(node, "node")
    compute = reader.string(node, "node", "compute", default=DEFAULT_COMPUTE)
    if compute in (*hospitals, *coordinators):
        raise reader.error(f"{compute!r} is also a hospital or coordinator here; the compute "
                           "node must be a party of its own", "node.compute")
    return NodeConfig(
        name=name,
        listen=listen,
        data_path=data_path,
        tls=tls,
        hospitals=hospitals,
        coordinators=coordinators,
        compute=compute,
        audit_log=reader.audit_log(reader.string(node, "node", "name")),
        policy=policy_from_mapping(reader.table("policy", required=False),
                                   path=str(reader.path)),
        approvals_dir=(reader.path.parent / "approvals"
                       / reader.string(node, "node", "name")).resolve(),
        privacy_ledger=(reader.path.parent / "privacy-ledger"
                        / f"{reader.string(node, 'node', 'name')}.jsonl").resolve(),
        catalogue=_catalogue(reader),
    )


def load_compute_config(path: str | Path, *, insecure: bool = False) -> ComputeConfig:
    """Parse compute.toml: ``[compute] name, listen, coordinators``, ``[tls]``."""
    reader = _read(path)
    reader.known_keys(reader.data, "", {"compute", "tls", "audit"})
    compute = reader.table("compute")
    reader.known_keys(compute, "compute", {"name", "listen", "coordinators"})
    listen = reader.string(compute, "compute", "listen")
    check_address(listen, path=str(reader.path), field="compute.listen")
    return ComputeConfig(
        name=reader.string(compute, "compute", "name", default=DEFAULT_COMPUTE),
        listen=listen,
        tls=reader.tls(insecure=insecure),
        coordinators=reader.coordinators(compute, "compute"),
        audit_log=reader.audit_log(reader.string(compute, "compute", "name",
                                                 default=DEFAULT_COMPUTE)),
    )


def load_study_config(path: str | Path, *, insecure: bool = False) -> StudyConfig:
    """Parse study.toml (see the README for every field)."""
    reader = _read(path, STUDY_FILE)
    where = str(reader.path)
    reader.known_keys(reader.data, "",
                      {"study", "party", "compute", "tls", "schema", "analysis", "audit"})
    study = reader.table("study")
    reader.known_keys(study, "study",
                      {"name", "engine", "timeout_seconds", "peer_timeout_seconds",
                       "min_cell_count", "min_cohort", "ckks_release_bits"})
    NAME_CHARS.check(len(reader.string(study, "study", "name")), "study.name", path=where)
    engine = reader.string(study, "study", "engine")
    if engine not in ENGINES:
        raise reader.error(f"must be one of {', '.join(ENGINES)}, got {engine!r}", "study.engine")

    raw_parties = reader.data.get("party")
    if not isinstance(raw_parties, list) or not raw_parties:
        raise reader.error("at least one [[party]] table is required", "party")
    PARTIES.check(len(raw_parties), "party", path=where)
    parties = []
    for i, raw in enumerate(raw_parties):
        prefix = f"party[{i}]"
        if not isinstance(raw, Mapping):
            raise reader.error("must be a table", prefix)
        reader.known_keys(raw, prefix, {"name", "address"})
        address = reader.string(raw, prefix, "address")
        check_address(address, path=where, field=f"{prefix}.address")
        parties.append(Party(reader.string(raw, prefix, "name"), address))
        NAME_CHARS.check(len(parties[-1].name), f"{prefix}.name", path=where)
    names = [p.name for p in parties]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise reader.error(f"party names must be unique: {', '.join(duplicates)}", "party")
    if len(parties) < MIN_PARTIES[engine]:
        reason = ("MPC with honest majority needs at least 3 parties: with 2, one party's "
                  "share alone would reveal the other's input" if engine == "mpc" else
                  "with a single site the coordinator would decrypt that site's aggregates")
        raise reader.error(f"engine {engine!r} needs at least {MIN_PARTIES[engine]} parties "
                           f"({reason})", "party")

    compute = None
    if engine == "ckks":
        table = reader.table("compute")
        reader.known_keys(table, "compute", {"name", "address"})
        address = reader.string(table, "compute", "address")
        check_address(address, path=where, field="compute.address")
        compute = Party(reader.string(table, "compute", "name", default=DEFAULT_COMPUTE),
                        address)

    schema = schema_from_mapping(reader.table("schema"), path=where)
    raw_analyses = reader.data.get("analysis")
    if not isinstance(raw_analyses, list) or not raw_analyses:
        raise reader.error("at least one [[analysis]] table is required", "analysis")
    analyses = parse_analyses(raw_analyses, schema, path=where)
    min_cohort = study.get("min_cohort", 10)
    if isinstance(min_cohort, bool) or not isinstance(min_cohort, int) or min_cohort < 1:
        raise reader.error(f"must be a whole number >= 1, got {min_cohort!r}",
                           "study.min_cohort")
    release_bits = study.get("ckks_release_bits", 20)
    if isinstance(release_bits, bool) or not isinstance(release_bits, int) \
            or not 0 <= release_bits <= 40:
        raise reader.error(f"must be a whole number from 0 to 40, got {release_bits!r}",
                           "study.ckks_release_bits")
    min_cell_count = study.get("min_cell_count", 5)
    if isinstance(min_cell_count, bool) or not isinstance(min_cell_count, int) \
            or min_cell_count < 1:
        raise reader.error(f"must be a whole number >= 1, got {min_cell_count!r}",
                           "study.min_cell_count")
    for analysis in analyses:
        kind = kind_of(analysis.kind)
        if engine not in kind.engines:
            raise reader.error(f"kind {analysis.kind!r} cannot run on the {engine} engine "
                               f"(it runs on: {', '.join(sorted(kind.engines))})",
                               f"analysis[{analyses.index(analysis)}].kind")
        try:
            kind.check_engine(analysis, schema, engine)
        except ConfigError as exc:
            raise reader.error(str(exc), f"analysis[{analyses.index(analysis)}]") from None

    return StudyConfig(
        name=reader.string(study, "study", "name"),
        engine=engine,
        parties=tuple(parties),
        schema=schema,
        analyses=analyses,
        tls=reader.tls(insecure=insecure),
        compute=compute,
        timeout_seconds=reader.number(study, "study", "timeout_seconds", 120.0),
        peer_timeout_seconds=reader.number(study, "study", "peer_timeout_seconds", 15.0),
        min_cell_count=min_cell_count,
        ckks_release_bits=release_bits,
        min_cohort=min_cohort,
        audit_log=reader.audit_log("coordinator"),
    )
