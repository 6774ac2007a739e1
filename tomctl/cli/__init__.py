"""The ``tomctl`` command line: ``main(argv) -> exit status``; one module per command group."""

from __future__ import annotations

import argparse
import os
import sys

from tomctl import __version__
from tomctl.cli import catalogue, learning, qc, serve, status, token
from tomctl.errors import TomError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tomctl", description="TOM, the phone assistant.")
    parser.add_argument("--version", action="version", version=f"tomctl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve.register(commands)
    token.register(commands)
    status.register(commands)
    qc.register(commands)
    catalogue.register(commands)
    learning.register(commands)
    return parser


# What a shell reports for a command killed by SIGPIPE, as `tomctl calls | head` is.
BROKEN_PIPE = 128 + 13


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = args.run(args)
        sys.stdout.flush()          # a closed pipe shows here, not at exit
        return status
    except TomError as exc:
        print(f"tomctl: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader left (`| head`): stop quietly like a Unix tool. Python would flush
        # stdout again at exit and fail once more, so point it at /dev/null first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE
