"""The ``tomctl`` command line: ``main(argv) -> exit status``; one module per command group."""

from __future__ import annotations

import argparse
import sys

from tomctl import __version__
from tomctl.cli import serve, status, token
from tomctl.errors import TomError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tomctl", description="TOM, the phone assistant.")
    parser.add_argument("--version", action="version", version=f"tomctl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve.register(commands)
    token.register(commands)
    status.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except TomError as exc:
        print(f"tomctl: error: {exc}", file=sys.stderr)
        return 2
