"""How late the gevent hub runs a timer: the longest any greenlet (a call's audio, its
pacing, an ESL reply) had to wait because something held the hub."""

from __future__ import annotations

import time

import gevent

from tomctl.metrics import Metrics

INTERVAL_S = 0.05


class LoopLag:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self.max_s = 0.0
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)

    def _run(self) -> None:
        while True:
            before = time.monotonic()
            gevent.sleep(INTERVAL_S)
            lag = max(0.0, time.monotonic() - before - INTERVAL_S)
            self.max_s = max(self.max_s, lag)
            self._metrics.loop_lag.observe(lag)
