"""``tomctl token``: mint a short-lived HS256 token for the browser test page."""

from __future__ import annotations

import argparse

from tomctl import config
from tomctl.gateway.auth import mint


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("token", help="print a short-lived token for the browser page")
    parser.add_argument("--lifetime", type=int, default=600, metavar="SECONDS",
                        help="how long the token is valid (default 600)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(mint(config.load().gateway, args.lifetime))
    return 0
