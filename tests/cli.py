"""TOM as an operator runs it: `tomctl serve` in its own process, and the tomctl CLI."""

from __future__ import annotations

import json
import sys

import gevent
import gevent.subprocess


def start_serve(environ: dict) -> tuple[gevent.subprocess.Popen, dict]:
    """Start `tomctl serve`; return the process and its `ready` log entry (JSON logs)."""
    process = gevent.subprocess.Popen([sys.executable, "-m", "tomctl", "serve"],
                                      env={**environ, "TOM_LOG_FORMAT": "json"},
                                      stdout=gevent.subprocess.PIPE,
                                      stderr=gevent.subprocess.DEVNULL)
    with gevent.Timeout(180, AssertionError("tomctl serve did not log ready")):
        for line in process.stdout:
            entry = json.loads(line)
            if entry["event"] == "ready":
                return process, entry
    raise AssertionError(f"tomctl serve exited ({process.wait()}) before ready")


def run_tomctl(environ: dict, *args: str) -> tuple[int, str]:
    """Exit status and output (stdout and stderr together) of one tomctl command."""
    process = gevent.subprocess.Popen([sys.executable, "-m", "tomctl", *args], env=environ,
                                      stdout=gevent.subprocess.PIPE,
                                      stderr=gevent.subprocess.STDOUT)
    output, _ = process.communicate(timeout=60)
    return process.returncode, output.decode()
