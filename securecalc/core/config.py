"""Configuration files: node.toml, compute.toml and study.toml, declared as models.

Each file has a model (:class:`NodeFile`, :class:`ComputeFile`, :class:`StudyFile`) whose
fields use the field types of :mod:`securecalc.core.model` and the study rules of
:mod:`securecalc.core.study_model`, the same that validate a job off the wire. A loader
validates the parsed TOML with its model and returns the frozen record other packages use.
Relative paths inside a file are resolved against that file's directory, so a study folder
can be moved as a whole. Every error names the file and the field at fault.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationInfo, model_validator

from securecalc.core.analyses import Analysis
from securecalc.core.catalogue import catalogue_from_mapping
from securecalc.core.defaults import (
    CKKS_RELEASE_BITS,
    CKKS_RELEASE_BITS_MAX,
    COMPUTE,
    COORDINATORS,
    ENGINES,
    MIN_CELL_COUNT,
    MIN_COHORT,
    MIN_PARTIES,
    PEER_TIMEOUT_SECONDS,
    TIMEOUT_SECONDS,
)
from securecalc.core.limits import STUDY_FILE, Limit
from securecalc.core.model import (
    Address,
    AtLeastOne,
    FilePath,
    Model,
    Name,
    Names,
    PositiveNumber,
    Text,
    address_problem,
    as_names,
    checked,
    config_path,
    invalid,
    validate,
    whole,
)
from securecalc.core.party import Party
from securecalc.core.pins import PIN_COMMAND, PinTable, missing_pins
from securecalc.core.policy import Policy, Roster
from securecalc.core.schema import Schema
from securecalc.core.source_model import Source, parse_sources
from securecalc.core.study_model import (
    AnalysisList,
    Engine,
    PartyList,
    SchemaTable,
    check_engine_rules,
)
from securecalc.errors import ConfigError

__all__ = ["ComputeConfig", "NodeConfig", "Party", "StudyConfig", "TlsConfig",
           "check_address", "load_compute_config", "load_node_config", "load_study_config",
           # compatibility: these now live in securecalc.core.defaults
           "DEFAULT_COMPUTE", "DEFAULT_COORDINATORS", "ENGINES", "MIN_PARTIES"]

DEFAULT_COORDINATORS = COORDINATORS
DEFAULT_COMPUTE = COMPUTE


# -- records --------------------------------------------------------------------------------

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
    #: ``[data] path``: one CSV or Parquet file, loaded whole (None when ``[[source]]`` is used)
    data_path: Path | None
    tls: TlsConfig | None
    #: the hospitals this node computes with (its own name among them); never from a job
    hospitals: tuple[str, ...]
    coordinators: tuple[str, ...] = COORDINATORS
    #: the only compute node this node sends CKKS ciphertexts to
    compute: str = COMPUTE
    audit_log: Path | None = None
    policy: Policy = field(default_factory=Policy)
    approvals_dir: Path | None = None
    #: the differential-privacy ledger (see :mod:`securecalc.node.privacy_ledger`)
    privacy_ledger: Path | None = None
    #: the columns this node offers, with published bounds and levels
    #: (see :mod:`securecalc.core.catalogue`)
    catalogue: Schema = field(default_factory=Schema)
    #: ``[[source]]`` tables: where the rows live, read through SQL (see
    #: :mod:`securecalc.core.source_model`); empty when ``[data] path`` is used
    sources: tuple[Source, ...] = ()
    #: ``[pins]``: party name -> key pin (:mod:`securecalc.core.pins`); with TLS, every
    #: hospital of the roster has one, and a caller whose key differs from its name's pin is
    #: refused
    pins: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def data_label(self) -> str:
        """What the node reads, for messages and the audit log: the file, or the sources."""
        if self.data_path is not None:
            return str(self.data_path)
        return "sources " + ", ".join(s.name for s in self.sources)

    @property
    def default_folder(self) -> Path:
        """Where state files go unless configured: the data file's folder, or the current."""
        return self.data_path.parent if self.data_path is not None else Path.cwd()

    @property
    def roster(self) -> Roster:
        return Roster(me=self.name, hospitals=frozenset(self.hospitals), compute=self.compute,
                      compute_pinned=self.tls is None or self.compute in self.pins)


@dataclass(frozen=True)
class ComputeConfig:
    name: str
    listen: str
    tls: TlsConfig | None
    coordinators: tuple[str, ...] = COORDINATORS
    audit_log: Path | None = None
    #: ``[pins]``: the key pin of every hospital that may submit (with TLS, at least one)
    pins: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class StudyConfig:
    name: str
    engine: str
    parties: tuple[Party, ...]
    schema: Schema
    analyses: tuple[Analysis, ...]
    tls: TlsConfig | None
    compute: Party | None = None
    timeout_seconds: float = TIMEOUT_SECONDS
    peer_timeout_seconds: float = PEER_TIMEOUT_SECONDS
    min_cell_count: int = MIN_CELL_COUNT
    #: analyses whose cohort (n) is smaller are withheld, decided inside the secure computation
    min_cohort: int = MIN_COHORT
    #: fractional bits kept of each decrypted (normalised) CKKS value; the rest, where the
    #: decryption noise lives, is rounded away before anything is released
    ckks_release_bits: int = CKKS_RELEASE_BITS
    audit_log: Path | None = None


# -- tables shared by the files ------------------------------------------------------------

class TlsTable(Model):
    """``[tls]``: paths relative to the file."""

    ca: FilePath
    cert: FilePath
    key: FilePath

    def record(self) -> TlsConfig:
        return TlsConfig(self.ca, self.cert, self.key)


class AuditTable(Model):
    """``[audit] log``: by default ``audit/<name>.jsonl`` beside the file."""

    log: FilePath | None = None

    def log_of(self, name: str, info_path: str | None) -> Path:
        return self.log or (Path(info_path or ".").parent / "audit" / f"{name}.jsonl").resolve()


def _tls(value: Any, info: ValidationInfo) -> TlsConfig | None:
    """``[tls]``, required unless the file is read ``insecure`` (then ignored)."""
    context = info.context or {}
    if context.get("insecure"):
        return None
    if value is None:
        raise invalid("missing table [tls]", root=True)
    return validate(TlsTable, value, path=config_path(info), prefix=("tls",)).record()


Tls = Annotated[TlsConfig | None, checked(_tls)]


def _coordinators(value: Any) -> tuple[str, ...]:
    """``coordinators``: the certificate names allowed to start work; never empty."""
    names = as_names(value)
    if not names:
        raise invalid("must list at least one coordinator (a certificate name allowed to start "
                      "studies): with none, no one could start a study here; omit the key for "
                      f"the default {list(COORDINATORS)}")
    return names


Coordinators = Annotated[tuple[str, ...], checked(_coordinators)]


# -- node.toml ------------------------------------------------------------------------------

class NodeSection(Model):
    """``[node]``."""

    name: Text
    listen: Address
    hospitals: Names | None = None
    coordinators: Coordinators = COORDINATORS
    compute: Text = COMPUTE


class DataTable(Model):
    """``[data] path``: a CSV or Parquet file whose columns carry the catalogue's names."""

    path: FilePath


def _sources(value: Any, info: ValidationInfo) -> tuple[Source, ...]:
    """``[[source]]`` tables, paths relative to node.toml's folder."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise invalid("must be a list of tables: write each source as [[source]]")
    path = config_path(info)
    return tuple(parse_sources(value, path=path,
                               base_dir=Path(path).parent if path else None))


def _data(value: Any, info: ValidationInfo) -> DataTable | None:
    """``[data]``, unless ``[[source]]`` tables say where the rows are (one of the two)."""
    sources = info.data.get("source")
    if value is None:
        if sources or "source" not in info.data:  # given (or given and invalid)
            return None
        raise invalid("missing table [data] or [[source]]: say where this node's rows are "
                      "(see the README, Data sources)", root=True)
    if sources:
        raise invalid("give the node's rows either as [data] path = \"<file.csv|parquet>\" "
                      "or as [[source]] tables, not both", root=True)
    return validate(DataTable, value, path=config_path(info), prefix=("data",))


def _catalogue(value: Any, info: ValidationInfo) -> Schema:
    """``[catalogue.<column>]`` tables: required, so that a node publishes what it offers."""
    if value is None:
        raise invalid(
            "missing table [catalogue]: add one [catalogue.<column>] table per column this "
            "node offers, with the keys of a study's [schema.<column>] (type = int, float or "
            "category; min and max, or levels); the node checks its data against them when it "
            "starts, and they are published to coordinators")
    if not isinstance(value, dict):
        raise invalid("must be a table")
    return catalogue_from_mapping(value, path=config_path(info))


def _policy(value: Any, info: ValidationInfo) -> Policy:
    if not isinstance(value, dict):
        raise invalid("must be a table")
    return validate(Policy, value, path=config_path(info), prefix=("policy",))


def _require_pins(names: tuple[str, ...], pins: dict[str, str], info: ValidationInfo,
                  what: str) -> None:
    """With TLS, every name of ``names`` must have a pin (insecure mode needs none)."""
    if (info.context or {}).get("insecure"):
        return
    missing = missing_pins(names, pins)
    if missing:
        one = len(missing) == 1
        raise invalid(f"{what}{'' if one else 's'} {', '.join(missing)} {'has' if one else 'have'} "
                      "no key pin: add a line \"<name>\" = \"sha256:...\" per hospital "
                      f"(print a pin with {PIN_COMMAND}); with TLS every hospital must be "
                      "pinned", at=("pins",))


class NodeFile(Model):
    """node.toml: ``[node]``, ``[data]`` or ``[[source]]``, ``[tls]``, ``[pins]``,
    ``[catalogue]``, ``[policy]``, ``[audit]``."""

    node: NodeSection
    source: Annotated[tuple[Source, ...], checked(_sources)] = ()
    data: Annotated[DataTable | None, checked(_data)] = Field(default=None,
                                                              validate_default=True)
    tls: Tls = Field(default=None, validate_default=True)
    pins: PinTable = Field(default=None, validate_default=True)
    audit: AuditTable = AuditTable()
    policy: Annotated[Policy, checked(_policy)] = Policy()
    catalogue: Annotated[Schema, checked(_catalogue)] = Field(default=None,
                                                               validate_default=True)

    @model_validator(mode="after")
    def _roster(self) -> NodeFile:
        node = self.node
        if node.hospitals is None:
            raise invalid("is required: list the hospitals this node computes with, its own "
                          f"name among them (e.g. [\"{node.name}\", ...])",
                          at=("node", "hospitals"))
        if len(set(node.hospitals)) != len(node.hospitals):
            raise invalid("lists a hospital twice", at=("node", "hospitals"))
        if node.name not in node.hospitals:
            raise invalid(f"must include this node's own name {node.name!r}",
                          at=("node", "hospitals"))
        if node.compute in (*node.hospitals, *node.coordinators):
            raise invalid(f"{node.compute!r} is also a hospital or coordinator here; the "
                          "compute node must be a party of its own", at=("node", "compute"))
        return self

    @model_validator(mode="after")
    def _pinned(self, info: ValidationInfo) -> NodeFile:
        if self.node.hospitals is not None:
            _require_pins(self.node.hospitals, self.pins, info, "hospital")
        return self

    def record(self, path: Path) -> NodeConfig:
        node = self.node
        assert node.hospitals is not None
        return NodeConfig(
            name=node.name, listen=node.listen,
            data_path=self.data.path if self.data is not None else None, tls=self.tls,
            hospitals=node.hospitals, coordinators=node.coordinators, compute=node.compute,
            audit_log=self.audit.log_of(node.name, str(path)), policy=self.policy,
            approvals_dir=(path.parent / "approvals" / node.name).resolve(),
            privacy_ledger=(path.parent / "privacy-ledger" / f"{node.name}.jsonl").resolve(),
            catalogue=self.catalogue, sources=self.source, pins=dict(self.pins))


# -- compute.toml ---------------------------------------------------------------------------

class ComputeSection(Model):
    """``[compute]`` of compute.toml."""

    name: Text = COMPUTE
    listen: Address
    coordinators: Coordinators = COORDINATORS


class ComputeFile(Model):
    """compute.toml: ``[compute]``, ``[tls]``, ``[pins]``, ``[audit]``."""

    compute: ComputeSection
    tls: Tls = Field(default=None, validate_default=True)
    pins: PinTable = Field(default=None, validate_default=True)
    audit: AuditTable = AuditTable()

    @model_validator(mode="after")
    def _pinned(self, info: ValidationInfo) -> ComputeFile:
        if not (info.context or {}).get("insecure") and not self.pins:
            raise invalid("missing table [pins]: pin the key of every hospital that submits "
                          "here (\"<name>\" = \"sha256:...\", printed by "
                          f"{PIN_COMMAND}); a hospital without a pin is refused", root=True)
        return self

    def record(self, path: Path) -> ComputeConfig:
        return ComputeConfig(name=self.compute.name, listen=self.compute.listen, tls=self.tls,
                             coordinators=self.compute.coordinators,
                             audit_log=self.audit.log_of(self.compute.name, str(path)),
                             pins=dict(self.pins))


# -- study.toml -----------------------------------------------------------------------------

class StudySection(Model):
    """``[study]``: name, engine, timeouts and release thresholds."""

    name: Name
    engine: Engine
    timeout_seconds: PositiveNumber = TIMEOUT_SECONDS
    peer_timeout_seconds: PositiveNumber = PEER_TIMEOUT_SECONDS
    min_cell_count: AtLeastOne = MIN_CELL_COUNT
    min_cohort: AtLeastOne = MIN_COHORT
    ckks_release_bits: Annotated[int, whole(0, CKKS_RELEASE_BITS_MAX)] = CKKS_RELEASE_BITS


class ComputeParty(Model):
    """``[compute]`` of a CKKS study: the compute node's name and address."""

    name: Text = COMPUTE
    address: Address

    def record(self) -> Party:
        return Party(self.name, self.address)


def _compute_party(value: Any, info: ValidationInfo) -> Party | None:
    """``[compute]`` of a CKKS study, required there; ignored by other engines."""
    study = info.data.get("study")
    if study is None or study.engine != "ckks":
        return None
    if value is None:
        raise invalid("missing table [compute]", root=True)
    return validate(ComputeParty, value, path=config_path(info), prefix=("compute",)).record()


class StudyFile(Model):
    """study.toml: ``[study]``, ``[[party]]``, ``[compute]`` (CKKS), ``[tls]``,
    ``[schema.<column>]``, ``[[analysis]]``, ``[audit]`` (see the README for every field)."""

    study: StudySection
    party: PartyList = Field(default=None, validate_default=True)
    compute: Annotated[Party | None, checked(_compute_party)] = Field(default=None,
                                                                      validate_default=True)
    tls: Tls = Field(default=None, validate_default=True)
    schema_: SchemaTable = Field(default=None, validate_default=True, alias="schema")
    analysis: AnalysisList = Field(default=None, validate_default=True)
    audit: AuditTable = AuditTable()

    @model_validator(mode="after")
    def _runs_on_engine(self, info: ValidationInfo) -> StudyFile:
        check_engine_rules(self.study.engine, self.party, self.schema_, self.analysis,
                           path=config_path(info))
        return self

    def record(self, path: Path) -> StudyConfig:
        study = self.study
        return StudyConfig(
            name=study.name, engine=study.engine,
            parties=self.party,
            schema=self.schema_, analyses=self.analysis, tls=self.tls,
            compute=self.compute,
            timeout_seconds=study.timeout_seconds,
            peer_timeout_seconds=study.peer_timeout_seconds,
            min_cell_count=study.min_cell_count, min_cohort=study.min_cohort,
            ckks_release_bits=study.ckks_release_bits,
            audit_log=self.audit.log_of("coordinator", str(path)))


# -- loaders --------------------------------------------------------------------------------

def _read(path: Path, max_bytes: Limit | None = None) -> dict[str, Any]:
    """Parse a TOML file; with ``max_bytes``, refuse a larger file before parsing it."""
    try:
        with path.open("rb") as handle:
            if max_bytes is not None:
                max_bytes.check(os.fstat(handle.fileno()).st_size, path=str(path))
                raw = handle.read(max_bytes.value + 1)
                max_bytes.check(len(raw), path=str(path))
            else:
                raw = handle.read()
        return tomllib.loads(raw.decode())
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


def check_address(address: str, *, path: str | None = None, field: str | None = None) -> str:
    """Accept ``host:port`` with a port in 0..65535."""
    problem = address_problem(address)
    if problem:
        raise ConfigError(problem, path=path, field=field)
    return address


def load_node_config(path: str | Path, *, insecure: bool = False) -> NodeConfig:
    """Parse node.toml (see :class:`NodeFile`)."""
    path = Path(path)
    return validate(NodeFile, _read(path), path=str(path),
                    context={"insecure": insecure}).record(path)


def load_compute_config(path: str | Path, *, insecure: bool = False) -> ComputeConfig:
    """Parse compute.toml (see :class:`ComputeFile`)."""
    path = Path(path)
    return validate(ComputeFile, _read(path), path=str(path),
                    context={"insecure": insecure}).record(path)


def load_study_config(path: str | Path, *, insecure: bool = False) -> StudyConfig:
    """Parse study.toml (see :class:`StudyFile` and the README for every field)."""
    path = Path(path)
    return validate(StudyFile, _read(path, STUDY_FILE), path=str(path),
                    context={"insecure": insecure}).record(path)
