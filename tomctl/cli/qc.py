"""``tomctl qc FILE... [--json]``: audio quality checks of WAV files, per channel.

Exit status: 0 when every check passes, 1 when one warns, 2 when one fails or a file
cannot be checked (not a WAV, truncated); each bad file is named on stderr, and the
others are still checked.
"""

from __future__ import annotations

import argparse
import json
import sys

from tomctl.recording.qc import FAIL, RANK, QcError, check_file, worst


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("qc", help="audio quality checks of WAV files; exit 0/1/2")
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    reports = []
    for path in args.files:
        try:
            reports.append(check_file(path))
        except QcError as exc:
            print(f"tomctl: qc: {exc}", file=sys.stderr)
            reports.append({"file": path, "verdict": FAIL, "error": str(exc)})
    verdict = worst(report["verdict"] for report in reports)
    if args.json:
        print(json.dumps({"verdict": verdict, "files": reports}, indent=2))
    else:
        for report in reports:
            _print(report)
    return RANK[verdict]


def _print(report: dict) -> None:
    print(f"{report['file']}: {report['verdict']}")
    if "error" in report:
        print(f"  error: {report['error']}")
        return
    for channel in report["channels"]:
        checks = ", ".join(f"{name} {check['value']} {check['verdict']}"
                           for name, check in channel["checks"].items())
        print(f"  channel {channel['channel']}: {channel['verdict']} ({checks})")
