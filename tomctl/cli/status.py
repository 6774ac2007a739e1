"""``tomctl status`` and ``tomctl calls``: ask the running service's admin endpoint."""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request

from tomctl import config

TIMEOUT_S = 5.0
NOT_RUNNING = 3          # exit status when the service does not answer


def register(commands: argparse._SubParsersAction) -> None:
    status = commands.add_parser("status", help="the running service: link, models, calls, latency")
    status.add_argument("--json", action="store_true", help="print the raw JSON")
    status.set_defaults(run=run_status)
    calls = commands.add_parser("calls", help="active calls and the last finished ones")
    calls.add_argument("--json", action="store_true", help="print the raw JSON")
    calls.set_defaults(run=run_calls)
    check = commands.add_parser("selfcheck", help="green/yellow/red checks; exit 0, 1 or 2")
    check.add_argument("--json", action="store_true", help="print the raw JSON")
    check.set_defaults(run=run_selfcheck)
    synthetic = commands.add_parser("synthetic-call",
                                    help="call TOM through FreeSWITCH; exit 0 when it answered")
    synthetic.add_argument("--json", action="store_true", help="print the raw JSON")
    synthetic.set_defaults(run=run_synthetic_call)
    purge = commands.add_parser("purge", help="delete call records older than "
                                              "TOM_STORE_RETENTION_DAYS and recordings older "
                                              "than TOM_RECORDING_RETENTION_HOURS")
    purge.add_argument("--dry-run", action="store_true", help="list what would go, delete "
                                                               "nothing")
    purge.set_defaults(run=run_purge)


def fetch(path: str, timeout_s: float = TIMEOUT_S, post: bool = False) -> dict | None:
    admin = config.load().admin
    url = f"http://{admin.host}:{admin.port}{path}"
    try:
        request = urllib.request.Request(url, data=b"" if post else None)
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"tomctl: TOM is not running or not answering at {url} ({exc})",
              file=sys.stderr)
        return None


def run_status(args: argparse.Namespace) -> int:
    status = fetch("/status")
    if status is None:
        return NOT_RUNNING
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    link = status["freeswitch_link"]
    e2e = status["e2e_latency_ms"]
    rows = [("version", status["version"]),
            ("uptime", f"{status['uptime_s']} s"),
            ("FreeSWITCH link", _link_line(link)),
            ("models", ", ".join(f"{name}: {device}"
                                 for name, device in status["models"].items())),
            ("active calls", str(status["active_calls"])),
            ("e2e latency, 15 min", f"p50 {e2e['p50']} ms, p95 {e2e['p95']} ms "
                                    f"({e2e['turns']} turns)" if e2e["turns"] else "no turns"),
            ("last selfcheck", _selfcheck_line(status["last_selfcheck"]))]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


def _link_line(link: dict) -> str:
    """The state, and the last error only while the link is not up: an error from before
    the link came back says nothing about it now."""
    if link["state"] == "up" or not link["last_error"]:
        return link["state"]
    return f"{link['state']}: {link['last_error']} ({link['last_error_age_s']} s ago)"


def _selfcheck_line(last: dict | None) -> str:
    if not last:
        return "none since start"
    age = round(time.time() - last["at"])
    bad = [check["name"] for check in last["checks"] if check["status"] != "green"]
    return f"{last['status']} {age} s ago" + (f" ({', '.join(bad)})" if bad else "")


def run_calls(args: argparse.Namespace) -> int:
    calls = fetch("/calls")
    if calls is None:
        return NOT_RUNNING
    if args.json:
        print(json.dumps(calls, indent=2))
        return 0
    print(f"{'id':<36}  {'state':<10}  {'caller':<16}  {'started':<19}  {'dur s':>6}  "
          f"{'turns':>5}  outcome")
    for call in calls["active"] + calls["finished"]:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(call["started_at"]))
        ended = call.get("ended_at") or time.time()
        state = call.get("state") or "ended"
        print(f"{call['id']:<36}  {state:<10}  {call['caller_hash'] or '-':<16}  {started:<19}  "
              f"{ended - call['started_at']:>6.1f}  {call['turns'] or 0:>5}  "
              f"{call.get('outcome') or ''}")
    print(f"{len(calls['active'])} active, {len(calls['finished'])} finished shown")
    return 0


SELFCHECK_TIMEOUT_S = 60.0
EXIT_STATUS = {"green": 0, "yellow": 1, "red": 2}


def run_selfcheck(args: argparse.Namespace) -> int:
    result = fetch("/selfcheck", SELFCHECK_TIMEOUT_S)
    if result is None:
        result = {"status": "red", "checks": [
            {"name": "service", "status": "red", "detail": "TOM does not answer"}]}
    else:
        result["checks"].insert(0, {"name": "service", "status": "green",
                                    "detail": "answering"})
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for check in result["checks"]:
            print(f"{check['status']:<6}  {check['name']:<15}  {check['detail']}")
        print(f"overall: {result['status']}")
    return EXIT_STATUS[result["status"]]


def run_synthetic_call(args: argparse.Namespace) -> int:
    result = fetch("/synthetic-call", SELFCHECK_TIMEOUT_S, post=True)
    if result is None:
        return NOT_RUNNING
    if args.json:
        print(json.dumps(result, indent=2))
    elif result["passed"]:
        print(f"pass: TOM answered in {result['e2e_ms']} ms (call {result['call']})")
    else:
        print(f"fail: {result.get('error') or 'TOM did not answer the question'}")
    return 0 if result["passed"] else 1


def run_purge(args: argparse.Namespace) -> int:
    result = fetch("/purge?dry_run=1" if args.dry_run else "/purge", SELFCHECK_TIMEOUT_S,
                   post=True)
    if result is None:
        return NOT_RUNNING
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb} {result['calls']} calls and {result['turns']} turns older than "
          f"{result['retention_days']} days")
    recordings = result["recordings"]
    for why, label in (("expired", f"older than {result['recording_retention_hours']} hours"),
                       ("orphaned", "without a call record")):
        print(f"{verb} {len(recordings[why])} recording files {label}")
        if args.dry_run:
            for name in recordings[why]:
                print(f"  {name}")
    for name in result.get("recordings_not_deleted", []):
        print(f"tomctl: could not delete {name}", file=sys.stderr)
    return 1 if result.get("recordings_not_deleted") else 0
