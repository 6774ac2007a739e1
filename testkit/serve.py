"""TOM as an operator runs it: `tomctl serve` in its own process (tests and benches)."""

from __future__ import annotations

import json
import sys

import gevent
import gevent.subprocess


def start_serve(environ: dict, timeout_s: float = 180,
                stderr=gevent.subprocess.DEVNULL) -> tuple[gevent.subprocess.Popen, dict]:
    """Start `tomctl serve`; return the process and its `ready` log entry (JSON logs).
    ``stderr``: where what is not a log entry goes (a traceback, a library's warning)."""
    process = gevent.subprocess.Popen([sys.executable, "-m", "tomctl", "serve"],
                                      env={**environ, "TOM_LOG_FORMAT": "json"},
                                      stdout=gevent.subprocess.PIPE,
                                      stderr=stderr)
    with gevent.Timeout(timeout_s, AssertionError("tomctl serve did not log ready")):
        for line in process.stdout:
            entry = json.loads(line)
            if entry["event"] == "ready":
                return process, entry
    raise AssertionError(f"tomctl serve exited ({process.wait()}) before ready")
