"""The tomctl CLI as an operator runs it (`tomctl serve` itself: testkit/serve.py)."""

from __future__ import annotations

import sys

import gevent.subprocess


def run_tomctl(environ: dict, *args: str) -> tuple[int, str]:
    """Exit status and output (stdout and stderr together) of one tomctl command."""
    process = gevent.subprocess.Popen([sys.executable, "-m", "tomctl", *args], env=environ,
                                      stdout=gevent.subprocess.PIPE,
                                      stderr=gevent.subprocess.STDOUT)
    output, _ = process.communicate(timeout=60)
    return process.returncode, output.decode()
