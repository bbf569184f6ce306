"""The ``securecalc`` command line: a thin layer over the Python API.

Every failure prints one line naming what is at fault and exits non-zero (1 for a securecalc
error, 2 for a usage error, 130 when interrupted; `audit verify` exits 3 for a log that is
intact up to a torn tail, which the party quarantines at its next start).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from securecalc.errors import SecureCalcError

if TYPE_CHECKING:
    from securecalc.core.config import NodeConfig
    from securecalc.node.approvals import Approvals

INSECURE_HELP = ("development only: no TLS, identities are claimed, not proven, and roles "
                 "(hospital, compute, coordinator) are not checked")
TORN_TAIL_STATUS = 3
INIT_NOTE = ("certs init makes every party's private key in one place, so whoever runs it "
             "holds them all: use it for demos and tests only. For a real study each party "
             "runs `securecalc certs request` and the CA operator `securecalc certs sign`.")
ROLES_HELP = "hospital, compute or coordinator"


def _certs_init(args: argparse.Namespace) -> int:
    from securecalc.errors import ConfigError
    from securecalc.pki import init_pki

    if args.names is not None:
        raise ConfigError("--names is gone: certificates now state each party's role; use "
                          "--hospitals a,b,c --compute compute --coordinators coordinator")
    roles = {role: [n.strip() for n in (value or "").split(",") if n.strip()]
             for role, value in (("hospitals", args.hospitals), ("compute", args.compute),
                                 ("coordinators", args.coordinators))}
    init_pki(Path(args.dir), hospitals=roles["hospitals"], compute=roles["compute"],
             coordinators=roles["coordinators"], days=args.days, force=args.force)
    written = "; ".join(f"{role}: {', '.join(names)}" for role, names in roles.items() if names)
    print(f"wrote a study CA and certificates ({written}) to {args.dir}")
    print(f"note: {INIT_NOTE}")
    return 0


def _certs_ca(args: argparse.Namespace) -> int:
    from securecalc.pki import init_ca

    cert, _ = init_ca(Path(args.dir), force=args.force)
    print(f"wrote a study CA ({cert} and its key) to {args.dir}; sign parties' requests "
          "with securecalc certs sign")
    return 0


def _certs_request(args: argparse.Namespace) -> int:
    from securecalc.csr import request_certificate

    made = request_certificate(args.name, Path(args.out), role=args.role, force=args.force)
    print(f"wrote {made.key} (this party's private key: keep it here) and {made.csr} "
          "(send only this file to the study CA's operator)")
    print(f"key pin of {args.name}: {made.pin}")
    return 0


def _certs_sign(args: argparse.Namespace) -> int:
    from securecalc.csr import sign_request

    ca = Path(args.ca)
    signed = sign_request(ca / "ca.crt", ca / "ca.key", Path(args.csr), Path(args.out),
                          role=args.role, days=args.days, force=args.force)
    print(f"wrote {signed.cert}: {signed.role} certificate of {signed.name}")
    print(f"key pin of {signed.name}: {signed.pin}")
    return 0


def _certs_pin(args: argparse.Namespace) -> int:
    from securecalc.pins import file_pin, file_pin_name

    for file in args.files:
        pin = file_pin(Path(file))
        print(f'"{file_pin_name(Path(file))}" = "{pin}"' if args.toml else pin)
    return 0


def _serve(role: str, load: Callable[..., Any], start: Callable[[Any], Any],
           args: argparse.Namespace) -> int:
    """Load a server's configuration, start it, and serve until stopped."""
    from securecalc.serving import run_until_stopped
    from securecalc.transport.server import parse_host_port

    config = load(args.config, insecure=args.insecure)
    server, port = start(config)
    run_until_stopped(server, role=role, name=config.name,
                      host=parse_host_port(config.listen)[0], port=port)
    return 0


def _node_serve(args: argparse.Namespace) -> int:
    from securecalc.core.config import load_node_config
    from securecalc.wiring import start_node

    return _serve("node", load_node_config, start_node, args)


def _node_approvals(args: argparse.Namespace) -> tuple[NodeConfig, Approvals]:
    from securecalc.core.config import load_node_config
    from securecalc.node.approvals import Approvals

    config = load_node_config(args.config, insecure=True)
    assert config.approvals_dir is not None
    return config, Approvals(config.approvals_dir)


def _node_pending(args: argparse.Namespace) -> int:
    from securecalc.node.approvals import describe

    _, approvals = _node_approvals(args)
    pending = approvals.list_pending()
    print("\n".join(describe(r) for r in pending) if pending else "no pending requests")
    return 0


def _node_approve(args: argparse.Namespace) -> int:
    import getpass

    from securecalc.audit.log import AuditLog
    from securecalc.node.approvals import describe

    config, approvals = _node_approvals(args)
    request = approvals.approve(args.request)
    assert config.audit_log is not None
    AuditLog(config.audit_log, party=config.name).append(
        "approval", request=request["id"], study=request["study"], digest=request["digest"],
        operator=getpass.getuser(), columns=request["columns"],
        analyses=[a["id"] for a in request["covers"]["analyses"]])
    print(describe(request))
    print(f"approved: {request['id']} (the coordinator can now run the study)")
    return 0


def _node_budget(args: argparse.Namespace) -> int:
    from fractions import Fraction

    from securecalc.core.config import load_node_config
    from securecalc.core.privacy import exact
    from securecalc.node.privacy_ledger import PrivacyLedger, show

    config = load_node_config(args.config, insecure=True)
    assert config.privacy_ledger is not None
    spent = PrivacyLedger(config.privacy_ledger).by_study()
    policy = config.policy
    print(f"privacy ledger: {config.privacy_ledger}")
    print(f"budget per study: {policy.dp_budget if policy.dp_budget is not None else 'none'}; "
          f"over all studies: "
          f"{policy.dp_total_budget if policy.dp_total_budget is not None else 'none'}")
    for study, epsilon in spent.items():
        left = "" if policy.dp_budget is None else \
            f" (left: {show(max(Fraction(0), exact(policy.dp_budget) - epsilon))})"
        print(f"  {study}: epsilon {show(epsilon)} spent{left}")
    print(f"total spent: {show(sum(spent.values(), Fraction(0)))}"
          if spent else "no differentially private study has run")
    return 0


def _node_describe(args: argparse.Namespace) -> int:
    from securecalc.core.catalogue import catalogue_toml
    from securecalc.core.config import load_node_config

    config = load_node_config(args.config, insecure=True)
    print(f"# the catalogue of {config.name}: paste into a study's [schema]\n")
    print(catalogue_toml(config.catalogue), end="")
    return 0


def _node_check(args: argparse.Namespace) -> int:
    from securecalc.core.config import load_node_config

    config = load_node_config(args.config, insecure=True)
    if config.data_path is None:
        return _check_sources(config)
    from securecalc.core.catalogue import describe_column
    from securecalc.node.datastore import validated

    table = validated(config.data_path, config.catalogue)
    print(f"{config.data_path}: {table.n_rows} rows fit the catalogue of {config.name}")
    print(f"{'column':<16} {'type':<9} {'missing':>9}  bounds or levels")
    for column in config.catalogue:
        missing = int(table.column(column.name).missing.sum())
        print(f"{column.name:<16} {column.type:<9} {missing:>9}  {describe_column(column)}")
    return 0


def _check_sources(config: NodeConfig) -> int:
    """``node check`` of ``[[source]]`` tables: counts and the first offending rows go to
    this terminal only (the node's operator)."""
    from securecalc.node.source_store import unfit
    from securecalc.sources import SourceError, open_sources
    from securecalc.sources.node import check_lines

    try:
        with open_sources(config.sources, config.catalogue) as reader:
            report = reader.check()
            problem = unfit(reader, report)
    except SourceError as exc:  # the detail (the database's own words) for this operator
        if exc.detail:
            print(f"detail: {' '.join(exc.detail.split())}", file=sys.stderr)
        print(f"securecalc: error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(check_lines(config.name, config.catalogue, report)))
    if problem is not None:
        print(f"securecalc: error: {problem}", file=sys.stderr)
        return 1
    return 0


def _compute_serve(args: argparse.Namespace) -> int:
    from securecalc.core.config import load_compute_config
    from securecalc.wiring import start_compute

    return _serve("compute", load_compute_config, start_compute, args)


def _study_run(args: argparse.Namespace) -> int:
    from securecalc.coordinator.study import run_study
    from securecalc.report import format_study

    result = run_study(args.study, insecure=args.insecure)
    if args.out:
        result.write(args.out)
    print(format_study(result))
    if args.out:
        print(f"results written to {args.out}")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from securecalc.errors import ConfigError
    from securecalc.synth import write_cohort

    try:
        if args.format in ("omop", "fhir"):  # a folder per site: CDM CSVs or FHIR NDJSON
            from securecalc.sources.synthetic import write_fhir, write_omop

            writer = write_omop if args.format == "omop" else write_fhir
            paths = writer(Path(args.out), sites=args.sites, rows=args.rows, seed=args.seed)
        else:
            paths = write_cohort(Path(args.out), sites=args.sites, rows=args.rows,
                                 seed=args.seed, fmt=args.format)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    for path in paths:
        print(path)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from securecalc.demo import run_demo

    if args.source == "omop":
        from securecalc.sources.pgserver import PostgresUnavailable

        try:
            return run_demo(rows=args.rows, workdir=Path(args.dir) if args.dir else None,
                            source="omop")
        except PostgresUnavailable as exc:
            print(f"securecalc: error: cannot start PostgreSQL for the demo: {exc}",
                  file=sys.stderr)
            return 1
    return run_demo(rows=args.rows, workdir=Path(args.dir) if args.dir else None)


def _audit_verify(args: argparse.Namespace) -> int:
    from securecalc.audit.verify import load_heads, verify_log

    report = verify_log(Path(args.log), ca=Path(args.ca) if args.ca else None,
                        heads=load_heads([Path(p) for p in args.head]))
    for problem in report.problems:
        print(f"{args.log}: {problem}", file=sys.stderr)
    if report.torn:
        print(f"{args.log}: {report.torn_message()}", file=sys.stderr)
    if not report.ok:
        print(f"securecalc: error: {args.log}: {len(report.problems)} problem(s) found",
              file=sys.stderr)
        return 1
    print(f"{args.log}: {len(report.records)} records, {report.checkpoints} checkpoints, "
          "chain and signatures intact" + (" up to a torn tail" if report.torn else ""))
    return TORN_TAIL_STATUS if report.torn else 0


def _audit_show(args: argparse.Namespace) -> int:
    from securecalc.audit.verify import show, verify_log

    report = verify_log(Path(args.log))
    print(show(report.records))
    for problem in report.problems:
        print(f"warning: {problem}", file=sys.stderr)
    if report.torn:
        print(f"warning: {report.torn_message()}", file=sys.stderr)
    return 0


BENCH_MISSING = ("securecalc bench needs the development tools: pip install -e benchmarks/ "
                 "(or make .venv/.installed)")


def _bench(args: argparse.Namespace) -> int:
    from securecalc_bench.cli import run

    return run(args)


def _bench_missing(args: argparse.Namespace) -> int:
    print(f"securecalc: error: {BENCH_MISSING}", file=sys.stderr)
    return 2


def _add_bench(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``bench`` command: from the development package ``securecalc_bench`` when it is
    installed (``benchmarks/``), otherwise one that says how to install it."""
    import importlib.util

    help_text = "measure what the engines cost, side by side (development tools)"
    if importlib.util.find_spec("securecalc_bench") is None:
        # "+" as option prefix: every argument, --quick included, is taken as given and
        # ignored, so the command reports the missing tools instead of a usage error
        missing = commands.add_parser("bench", help=help_text, prefix_chars="+",
                                      add_help=False)
        missing.add_argument("ignored", nargs="*", help=argparse.SUPPRESS)
        missing.set_defaults(func=_bench_missing)
        return
    from securecalc_bench.cli import add_arguments

    bench = commands.add_parser("bench", help=help_text)
    add_arguments(bench)
    bench.set_defaults(func=_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="securecalc",
        description="Cross-institution statistics without exposing patient values.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    certs = commands.add_parser("certs", help="study certificates").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    init = certs.add_parser(
        "init", help="demos and tests only: create a study CA and a key and certificate per "
        "name in one place", description=INIT_NOTE)
    init.add_argument("--dir", required=True, help="folder to write ca.crt, NAME.crt, NAME.key")
    init.add_argument("--hospitals", help="comma-separated hospital party names, "
                      "e.g. hospital-a,hospital-b,hospital-c")
    init.add_argument("--compute", help="the compute node's name(s), e.g. compute")
    init.add_argument("--coordinators", help="coordinator name(s), e.g. coordinator")
    init.add_argument("--names", help=argparse.SUPPRESS)  # removed: explains the new flags
    init.add_argument("--days", type=int, default=90, help="certificate lifetime (max 90)")
    init.add_argument("--force", action="store_true", help="overwrite existing files")
    init.set_defaults(func=_certs_init)
    ca = certs.add_parser("ca", help="create only a study CA (ca.crt, ca.key), to sign "
                          "parties' requests")
    ca.add_argument("--dir", required=True, help="folder to write ca.crt and ca.key")
    ca.add_argument("--force", action="store_true", help="overwrite existing files")
    ca.set_defaults(func=_certs_ca)
    request = certs.add_parser("request", help="at a party: create its own key and a "
                               "certificate signing request (only the request leaves)")
    request.add_argument("--name", required=True, help="this party's name, e.g. hospital-a")
    request.add_argument("--role", required=True, help=f"the role asked for: {ROLES_HELP}")
    request.add_argument("--out", required=True, help="folder to write NAME.key and NAME.csr")
    request.add_argument("--force", action="store_true", help="overwrite existing files")
    request.set_defaults(func=_certs_request)
    sign = certs.add_parser("sign", help="at the CA operator: sign a party's request")
    sign.add_argument("--ca", required=True, help="folder holding ca.crt and ca.key")
    sign.add_argument("--csr", required=True, help="the party's NAME.csr")
    sign.add_argument("--role", required=True, help=f"the role the CA grants: {ROLES_HELP}")
    sign.add_argument("--days", type=int, default=90, help="certificate lifetime (max 90)")
    sign.add_argument("--out", required=True, help="the certificate to write, e.g. NAME.crt")
    sign.add_argument("--force", action="store_true", help="overwrite an existing file")
    sign.set_defaults(func=_certs_sign)
    pin = certs.add_parser("pin", help="print the key pin (sha256:...) of a certificate or "
                           "request, for the [pins] of the other parties")
    pin.add_argument("files", nargs="+", metavar="FILE",
                     help="a certificate (.crt) or certificate signing request (.csr)")
    pin.add_argument("--toml", action="store_true", help='print [pins] lines: "NAME" = "PIN"')
    pin.set_defaults(func=_certs_pin)

    node = commands.add_parser("node", help="a hospital party node").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    serve = node.add_parser("serve", help="serve this hospital's data to studies")
    serve.add_argument("--config", required=True, help="node.toml")
    serve.add_argument("--insecure", action="store_true", help=INSECURE_HELP)
    serve.set_defaults(func=_node_serve)
    pending = node.add_parser("pending", help="list studies waiting for this node's approval")
    pending.add_argument("--config", required=True, help="node.toml")
    pending.set_defaults(func=_node_pending)
    approve = node.add_parser("approve", help="approve a pending study request")
    approve.add_argument("request", help="the request id shown by `node pending`")
    approve.add_argument("--config", required=True, help="node.toml")
    approve.set_defaults(func=_node_approve)
    budget = node.add_parser("budget", help="epsilon each study has spent on this node")
    budget.add_argument("--config", required=True, help="node.toml")
    budget.set_defaults(func=_node_budget)
    describe_node = node.add_parser("describe",
                                    help="print the catalogue coordinators may ask for")
    describe_node.add_argument("--config", required=True, help="node.toml")
    describe_node.set_defaults(func=_node_describe)
    check = node.add_parser("check", help="check the data against the catalogue (local output)")
    check.add_argument("--config", required=True, help="node.toml")
    check.set_defaults(func=_node_check)

    compute = commands.add_parser("compute", help="the untrusted CKKS compute node")
    compute_serve = compute.add_subparsers(dest="action", required=True, metavar="ACTION") \
        .add_parser("serve", help="add encrypted contributions")
    compute_serve.add_argument("--config", required=True, help="compute.toml")
    compute_serve.add_argument("--insecure", action="store_true", help=INSECURE_HELP)
    compute_serve.set_defaults(func=_compute_serve)

    study = commands.add_parser("study", help="run studies as their coordinator")
    run = study.add_subparsers(dest="action", required=True, metavar="ACTION") \
        .add_parser("run", help="run a study and print its released results")
    run.add_argument("study", help="study.toml")
    run.add_argument("--out", help="write results.json here")
    run.add_argument("--insecure", action="store_true", help=INSECURE_HELP)
    run.set_defaults(func=_study_run)

    audit = commands.add_parser("audit", help="audit logs").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    verify = audit.add_parser("verify", help="check a log's hash chain and signed checkpoints")
    verify.add_argument("log", help="the audit log (JSON lines)")
    verify.add_argument("--ca", help="study CA certificate: checkpoint signers must chain to it")
    verify.add_argument("--head", action="append", default=[],
                        help="a checkpoint of this log held by another party (repeatable)")
    verify.set_defaults(func=_audit_verify)
    show_log = audit.add_parser("show", help="print a log readably")
    show_log.add_argument("log")
    show_log.set_defaults(func=_audit_show)

    synth = commands.add_parser("synth", help="write a synthetic multi-center cohort")
    synth.add_argument("--sites", type=int, default=3)
    synth.add_argument("--rows", type=int, default=10_000, help="rows per site")
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--format", choices=("csv", "parquet", "omop", "fhir"), default="csv",
                       help="csv or parquet: a file per site; omop: a folder of OMOP CDM v5.4 "
                       "CSVs per site; fhir: a FHIR R4 Bulk Data NDJSON folder per site (the "
                       "same patients in every format)")
    synth.set_defaults(func=_synth)

    demo = commands.add_parser("demo", help="three hospitals, both engines, on this machine")
    demo.add_argument("--rows", type=int, default=50_000, help="rows per hospital")
    demo.add_argument("--dir", help="keep the demo's files here (default: a temporary folder)")
    demo.add_argument("--source", choices=("file", "omop"), default="file",
                      help="where the nodes read their rows: file (a CSV each, the default) or "
                      "omop (an OMOP CDM extract in a temporary PostgreSQL server, one "
                      "database per hospital; needs the PostgreSQL server programs)")
    demo.set_defaults(func=_demo)

    _add_bench(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return int(args.func(args))
    except SecureCalcError as exc:
        print(f"securecalc: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("securecalc: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not _interrupted(exc):
            raise
        print("securecalc: interrupted", file=sys.stderr)
        return 130


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` stems from a ^C: Python 3.11 turns a KeyboardInterrupt that arrives
    while a class body is set up (``__set_name__``) or a C extension loads into another error,
    with the interrupt as its cause, so a command interrupted during its lazy imports would
    otherwise end with a traceback."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False
