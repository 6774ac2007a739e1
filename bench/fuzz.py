"""Fuzz every target in tests/fuzz/ and print one JSON object.

    python bench/fuzz.py [--runs 100000] [--targets esl_parser,jwt_token] [--json]

Each target runs in its own process under atheris (libFuzzer, coverage-guided on TOM's
code and on h11, wsproto and pyjwt), with a time bound per input (--timeout-s) and a memory
bound (--rss-limit-mb). libFuzzer stops a target at its first finding and writes the input
that reproduces it to --artifacts; `python tests/fuzz/run.py TARGET FILE` replays it.
Prints per target: inputs tried, crashes, hangs, out-of-memory, seconds; exit status 1 on
any finding.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.path.join(ROOT, "tests", "fuzz", "run.py")
# Inputs that once found a bug, and seeds (a valid handshake, valid claims): each run starts
# from them (libFuzzer writes what it finds
# into the first corpus directory only, a temporary one).
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")


def targets() -> list[str]:
    return subprocess.run([sys.executable, RUNNER, "--list"], check=True, capture_output=True,
                          text=True, cwd=ROOT).stdout.split()


def fuzz(target: str, runs: int, timeout_s: int, rss_limit_mb: int, max_len: int,
         artifacts: str) -> dict:
    started = time.monotonic()
    seeds = [os.path.join(CORPUS, target)] if os.path.isdir(os.path.join(CORPUS, target)) else []
    work = tempfile.mkdtemp(prefix=f"tom-fuzz-{target}-")
    process = subprocess.run(
        [sys.executable, RUNNER, target, work, *seeds, f"-runs={runs}", f"-timeout={timeout_s}",
         f"-rss_limit_mb={rss_limit_mb}", f"-max_len={max_len}", "-print_final_stats=1",
         f"-artifact_prefix={os.path.join(artifacts, target)}-"],
        capture_output=True, text=True, cwd=ROOT)
    shutil.rmtree(work, ignore_errors=True)
    log = process.stderr
    done = re.search(r"^Done (\d+) runs", log, re.M)
    executed = re.search(r"^stat::number_of_executed_units:\s*(\d+)", log, re.M)
    hang = "libFuzzer: timeout" in log
    oom = "out-of-memory" in log
    crash = process.returncode != 0 and not (hang or oom)
    finding = re.search(r"Test unit written to (\S+)", log)
    return {"inputs": int(done.group(1) if done else executed.group(1) if executed else 0),
            "crashes": int(crash), "hangs": int(hang), "ooms": int(oom),
            "seconds": round(time.monotonic() - started, 1),
            **({"finding": finding.group(1), "log_tail": log[-1500:]} if finding or crash
               else {})}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000, help="inputs per target")
    parser.add_argument("--targets", default="", help="comma-separated; default: all")
    parser.add_argument("--timeout-s", type=int, default=5, help="bound on one input")
    parser.add_argument("--rss-limit-mb", type=int, default=1024)
    parser.add_argument("--max-len", type=int, default=4096, help="bytes per input")
    parser.add_argument("--artifacts", default=tempfile.gettempdir())
    parser.add_argument("--json", action="store_true", help="(always JSON; for symmetry)")
    args = parser.parse_args()
    chosen = args.targets.split(",") if args.targets else targets()
    results = {name: fuzz(name, args.runs, args.timeout_s, args.rss_limit_mb, args.max_len,
                          args.artifacts) for name in chosen}
    findings = sum(r["crashes"] + r["hangs"] + r["ooms"] for r in results.values())
    print(json.dumps({"runs_per_target": args.runs, "targets": results,
                      "crashes": sum(r["crashes"] for r in results.values()),
                      "hangs": sum(r["hangs"] for r in results.values()),
                      "ooms": sum(r["ooms"] for r in results.values())}, indent=2))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
