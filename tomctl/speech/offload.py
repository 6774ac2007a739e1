"""Handing blocking work to real threads and results back to greenlets.

Inference runs in the scheduler's threads (scheduler.py); other blocking work, such as the
call store's writes, in a :class:`Workers` pool. Threads report back to greenlets through a
:class:`HubMailbox` and stop early when their :class:`StopFlag` is set (checked between
tokens and sentences).
"""

from __future__ import annotations

import collections
from typing import Any, Callable

import gevent
import gevent.event
import gevent.queue
from gevent.threadpool import ThreadPool


class StopFlag:
    """Set on the hub, read in a worker thread. A plain attribute: the GIL makes it atomic,
    and a (possibly monkey-patched) threading.Event would not be safe across real threads."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


class HubMailbox:
    """A queue that worker threads post to and one greenlet reads from."""

    def __init__(self) -> None:
        self._loop = gevent.get_hub().loop
        self._queue: gevent.queue.Queue = gevent.queue.Queue()

    def post(self, item: Any) -> None:
        """Callable from any thread."""
        self._loop.run_callback_threadsafe(self._queue.put_nowait, item)

    def get(self, timeout_s: float) -> Any:
        """Next item; raises gevent.queue.Empty after ``timeout_s``."""
        return self._queue.get(timeout=timeout_s)


class Workers:
    """A named pool of real threads for one kind of model."""

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self._pool = ThreadPool(size)
        self._jobs: collections.deque = collections.deque()
        self._relay: gevent.Greenlet | None = None

    def run(self, fn: Callable[..., Any], *args: Any, timeout_s: float) -> Any:
        """Run ``fn`` in a worker and wait (yielding to the hub) at most ``timeout_s``."""
        return self.submit(fn, *args).get(timeout=timeout_s)   # in order with submit()

    def submit(self, fn: Callable[..., Any], *args: Any) -> gevent.event.AsyncResult:
        """Queue ``fn`` without waiting; jobs start in the order they were submitted.
        gevent's ThreadPool.spawn blocks its caller while every thread is busy, and waiters
        on its semaphore are not served strictly in order (a newcomer can take a thread
        just freed): so one relay greenlet hands the jobs over, one after another, and
        never the caller, which may be the greenlet that listens to a caller's audio."""
        result = gevent.event.AsyncResult()
        self._jobs.append((fn, args, result))
        if self._relay is None or self._relay.dead:
            self._relay = gevent.spawn(self._hand_over)
        return result

    def _hand_over(self) -> None:
        while self._jobs:
            fn, args, result = self._jobs.popleft()
            try:
                running = self._pool.spawn(fn, *args)
            except BaseException as exc:  # handed to whoever waits on the result
                result.set_exception(exc)
                continue
            running.rawlink(lambda done, result=result: result.set(done.value)
                            if done.successful() else result.set_exception(done.exception))

    def close(self) -> None:
        self._pool.kill()
