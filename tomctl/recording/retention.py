"""What `tomctl purge` deletes from the recordings directory (run inside the service).

A recording goes when it is older than TOM_RECORDING_RETENTION_HOURS (by the time its
file was last written, which a crash cannot leave in the future), or when its call record
is gone: a recording nobody can account for is not kept. Only TOM's own names are
touched (``<call uuid>.wav`` and ``.json``, and the ``.part`` files of a sidecar write
cut short); anything else in the directory is left alone.
"""

from __future__ import annotations

import os
import re
import time
from typing import Callable

_NAME = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
                   r"\.(wav|json)$")
_PART = re.compile(r"^tmp[A-Za-z0-9_]+\.part$")


def expired(directory: str, retention_s: float, known_calls: Callable[[list[str]], set[str]],
            now: float | None = None) -> dict[str, list[str]]:
    """{"expired": [...], "orphaned": [...]}: file names that must go, and why."""
    now = time.time() if now is None else now
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return {"expired": [], "orphaned": []}
    calls: dict[str, list[str]] = {}
    leftovers = []
    for name in names:
        match = _NAME.match(name)
        if match:
            calls.setdefault(match.group(1), []).append(name)
        elif _PART.match(name):
            leftovers.append(name)
    known = known_calls(list(calls))
    result: dict[str, list[str]] = {"expired": [], "orphaned": []}
    for call_id, files in calls.items():
        newest = max(_mtime(os.path.join(directory, name)) for name in files)
        if call_id not in known:
            result["orphaned"] += files
        elif newest < now - retention_s:
            result["expired"] += files
    result["expired"] += [name for name in leftovers
                          if _mtime(os.path.join(directory, name)) < now - retention_s]
    return result


def delete(directory: str, names: list[str]) -> list[str]:
    """Delete ``names`` from ``directory``; the names that could not be deleted."""
    failed = []
    for name in names:
        try:
            os.unlink(os.path.join(directory, name))
        except FileNotFoundError:
            pass
        except OSError:
            failed.append(name)
    return failed


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return float("inf")
