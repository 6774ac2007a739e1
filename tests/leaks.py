"""What must not outlive a call or a connection: greenlets and file descriptors."""

from __future__ import annotations

import gc
import os

import gevent
import greenlet


def live_greenlets() -> int:
    return sum(1 for obj in gc.get_objects()
               if isinstance(obj, greenlet.greenlet) and obj and not obj.dead)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def wait_until(predicate, timeout_s: float, what: str) -> None:
    with gevent.Timeout(timeout_s, AssertionError(f"timed out waiting for {what}")):
        while not predicate():
            gevent.sleep(0.02)
