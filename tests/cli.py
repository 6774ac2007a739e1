"""The tomctl CLI as an operator runs it (`tomctl serve` itself: testkit/serve.py)."""

from __future__ import annotations

import os
import sys

import gevent.subprocess


def run_tomctl(environ: dict, *args: str) -> tuple[int, str]:
    """Exit status and output (stdout and stderr together) of one tomctl command."""
    process = gevent.subprocess.Popen([sys.executable, "-m", "tomctl", *args], env=environ,
                                      stdout=gevent.subprocess.PIPE,
                                      stderr=gevent.subprocess.STDOUT)
    output, _ = process.communicate(timeout=60)
    return process.returncode, output.decode()


def run_tomctl_into_a_closed_pipe(environ: dict, *args: str) -> tuple[int, str]:
    """Exit status and stderr of a command whose reader has gone, as with `tomctl ... | head`."""
    read, write = os.pipe()
    os.close(read)
    try:
        process = gevent.subprocess.Popen([sys.executable, "-m", "tomctl", *args], env=environ,
                                          stdout=write, stderr=gevent.subprocess.PIPE)
    finally:
        os.close(write)
    _, errors = process.communicate(timeout=60)
    return process.returncode, errors.decode()
