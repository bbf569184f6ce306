"""Generate the protobuf and gRPC modules in ``securecalc/transport/proto`` from ``protos/``.

A development tool (needs the dev extra's pinned ``grpcio-tools``), not part of the package:
``python protos/generate.py`` (``make protos``) rewrites them; ``--check`` exits 1 when the
committed modules differ from what the current ``protos/`` would generate.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = ROOT / "protos"
PACKAGE_DIR = ROOT / "securecalc" / "transport" / "proto"
GENERATED_SUBDIR = Path("securecalc") / "v1"


def generate(out_dir: Path) -> list[Path]:
    """Run protoc on every .proto under protos/ into out_dir; return the generated files."""
    from grpc_tools import protoc  # development dependency

    sources = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed")
    files = sorted((out_dir / GENERATED_SUBDIR).glob("*.py*"))
    for path in files:  # generated imports are absolute from the proto root: anchor them here
        text = path.read_text()
        text = text.replace("from securecalc.v1 import", "from securecalc.transport.proto import")
        path.write_text(text)
    return files


def stale_files() -> list[str]:
    """Names of generated modules that differ from a fresh generation (empty when current)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        names = {p.name for p in fresh} | {p.name for p in PACKAGE_DIR.glob("*_pb2*.py*")}
        stale = []
        for name in sorted(names):
            ours, theirs = PACKAGE_DIR / name, Path(tmp) / GENERATED_SUBDIR / name
            if not (ours.exists() and theirs.exists() and filecmp.cmp(ours, theirs, shallow=False)):
                stale.append(name)
        return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale modules")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for name in stale:
            print(f"stale: securecalc/transport/proto/{name}")
        return 1 if stale else 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in generate(Path(tmp)):
            shutil.copy(path, PACKAGE_DIR / path.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
