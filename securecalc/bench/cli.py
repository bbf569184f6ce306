"""Command-line arguments of ``securecalc bench`` (imports nothing heavy)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="a small matrix that finishes in under 2 minutes (CI smoke test)")
    parser.add_argument("--out", default="benchmarks/results",
                        help="folder for JSON, CSV, plots and the Markdown summary")


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("the benchmark harness is not written yet")
