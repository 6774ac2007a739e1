"""What must not outlive a call or a connection: greenlets and file descriptors."""

from __future__ import annotations

import gc
import os

import gevent
import greenlet
from gevent.threadpool import _WorkerGreenlet


def live_greenlets() -> int:
    """TOM's live greenlets: not the hub's thread pool workers or their threads' own
    greenlets (the pool grows when jobs overlap, which is no leak), and not the fake
    switch's, whose timers outlive a call the way FreeSWITCH's linger does."""
    count = sum(1 for obj in gc.get_objects()
                if isinstance(obj, greenlet.greenlet) and obj and not obj.dead
                and obj.parent is not None and not isinstance(obj, _WorkerGreenlet)
                and not getattr(getattr(obj, "_run", None), "__module__", "").startswith(
                    "testkit."))
    # The walk over the whole heap is tens of ms of the test's own CPU on the hub: let the
    # hub switch, or the monitor would charge it to whatever TOM code runs next.
    gevent.sleep(0)
    return count


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def wait_until(predicate, timeout_s: float, what: str) -> None:
    with gevent.Timeout(timeout_s, AssertionError(f"timed out waiting for {what}")):
        while not predicate():
            gevent.sleep(0.02)
