"""``tomctl catalogue import FILE.csv | --demo``: replace the parts catalogue.

Exit status 0 when every row was imported, 1 when some rows were bad (they are listed with
their line numbers and left out), 2 when nothing was imported (the old catalogue stays).
"""

from __future__ import annotations

import argparse
from importlib import resources

from tomctl import config
from tomctl.tools.catalogue import MAX_BAD_ROWS_SHOWN, import_csv


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("catalogue", help="the parts catalogue")
    actions = parser.add_subparsers(dest="action", required=True)
    load = actions.add_parser("import", help="replace the catalogue with a CSV file's parts")
    source = load.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", metavar="FILE.csv")
    source.add_argument("--demo", action="store_true",
                        help="the bundled, synthetic demo catalogue")
    load.set_defaults(run=run_import)


def run_import(args: argparse.Namespace) -> int:
    target = config.load().tools.catalogue
    if args.demo:
        with resources.as_file(resources.files("tomctl.tools").joinpath(
                "data", "demo-catalogue.csv")) as path:
            report = import_csv(str(path), target)
    else:
        report = import_csv(args.file, target)
    print(f"imported {report.imported} parts into {target}")
    if report.bad_rows:
        print(f"left out {len(report.bad_rows)} bad rows:")
        for line, why in report.bad_rows[:MAX_BAD_ROWS_SHOWN]:
            print(f"  line {line}: {why}")
        if len(report.bad_rows) > MAX_BAD_ROWS_SHOWN:
            print(f"  … and {len(report.bad_rows) - MAX_BAD_ROWS_SHOWN} more")
    return 1 if report.bad_rows else 0
