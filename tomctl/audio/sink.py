"""The output port a conversation speaks through, and its paced implementation.

``AudioSink`` is what the conversation needs from a phone line or a browser: queue frames,
hold and resume (the caller may be starting to interrupt), clear (they did), and count what
was actually played, so the conversation knows at every moment what the caller has heard.

``PacedSink`` sends 20 ms frames to a ``send`` callable on a monotonic schedule, the way the
phone path must: FreeSWITCH plays each datagram the moment it arrives and does not pace.
"""

from __future__ import annotations

import collections
import time
from typing import Callable, Protocol, Sequence

import gevent
import gevent.event

from tomctl.audio.frames import FRAME_MS
from tomctl.metrics import Metrics

_FRAME_S = FRAME_MS / 1000
# After a stall longer than this, restart the schedule instead of bursting to catch up.
_MAX_CATCH_UP_S = 0.06


class AudioSink(Protocol):
    rate: int

    @property
    def frames_queued(self) -> int: ...   # frames ever accepted (cumulative)

    @property
    def position(self) -> int: ...       # index of the next frame to play: every frame
                                          # before it has been played, or dropped by clear()

    def play(self, frames: Sequence[bytes]) -> None: ...

    def hold(self) -> None: ...

    def resume(self) -> None: ...

    def clear(self) -> None: ...

    def wait_idle(self, timeout_s: float) -> bool: ...

    def when_sent(self, index: int, callback: Callable[[float], None]) -> None: ...
                                          # callback(monotonic time) once frame ``index``
                                          # has left; never if it is cleared unsent


class PacedSink:
    def __init__(self, send: Callable[[bytes], None], rate: int, metrics: Metrics,
                 max_queue_ms: int = 30_000) -> None:
        self.rate = rate
        self._send = send
        self._metrics = metrics
        self._max_frames = max_queue_ms // FRAME_MS
        self._pending: collections.deque[bytes] = collections.deque()
        self._queued = 0
        self._position = 0
        self._held = False
        self._epoch = 0
        self._work = gevent.event.Event()
        self._room = gevent.event.Event()
        self._idle = gevent.event.Event()
        self._idle.set()
        self._greenlet: gevent.Greenlet | None = None
        self._watches: list[tuple[int, Callable[[float], None]]] = []
        self.last_sent_at = 0.0

    @property
    def frames_queued(self) -> int:
        return self._queued

    @property
    def position(self) -> int:
        return self._position

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=1)
        self._pending.clear()

    def play(self, frames: Sequence[bytes]) -> None:
        """Queue frames; waits while the queue is full (counted as backpressure)."""
        epoch = self._epoch
        for frame in frames:
            while len(self._pending) >= self._max_frames:
                self._metrics.record_backpressure()
                self._room.clear()
                self._room.wait(timeout=1)
            if epoch != self._epoch:  # cleared while we waited: the rest is unwanted
                return
            self._pending.append(frame)
            self._queued += 1
        if self._pending:
            self._idle.clear()
            self._work.set()

    def hold(self) -> None:
        self._held = True

    def resume(self) -> None:
        self._held = False
        self._work.set()

    def when_sent(self, index: int, callback: Callable[[float], None]) -> None:
        self._watches.append((index, callback))

    def clear(self) -> None:
        """Drop every frame not yet sent."""
        self._watches.clear()
        self._epoch += 1
        self._pending.clear()
        self._position = self._queued
        self._held = False
        self._room.set()
        self._idle.set()

    def wait_idle(self, timeout_s: float) -> bool:
        return self._idle.wait(timeout=timeout_s)

    def _fire_watches(self) -> None:
        due = [w for w in self._watches if w[0] < self._position]
        self._watches = [w for w in self._watches if w[0] >= self._position]
        for _, callback in due:
            callback(self.last_sent_at)

    def _run(self) -> None:
        next_at = 0.0
        while True:
            if not self._pending or self._held:
                if not self._pending:
                    self._idle.set()
                self._work.clear()
                self._work.wait()
                continue
            now = time.monotonic()
            if now - next_at > _MAX_CATCH_UP_S:
                next_at = now
            if next_at > now:
                gevent.sleep(next_at - now)
                continue  # re-check: a hold or clear may have come while we slept
            self._send(self._pending.popleft())
            self._position += 1
            self.last_sent_at = time.monotonic()
            if self._watches:
                self._fire_watches()
            next_at += _FRAME_S
            self._room.set()
