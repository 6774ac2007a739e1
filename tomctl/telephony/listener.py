"""The outbound-socket server: FreeSWITCH's ``socket`` application connects here once per call.

A bounded number of calls run at once, each in its own greenlet. A call beyond the limit,
or one that arrives while TOM is stopping, is handed straight back: TOM reads the channel
(``connect``; closing before it would leave the channel parked for good, ESL-FACTS.md 2.7)
and closes the socket, and the dialplan goes on with its fallback, the transfer to a person.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import gevent
import gevent.event
import gevent.pool
import gevent.server

from tomctl.config import TelephonySettings
from tomctl.errors import TelephonyError
from tomctl.logs import event
from tomctl.metrics import Metrics
from tomctl.telephony.esl import OutboundConnection

log = logging.getLogger(__name__)

# Greenlets beyond max_calls that may be turning surplus calls away at the same moment.
REJECT_HEADROOM = 16
# How long stop() lets a call being handed back finish once the calls in progress are done.
REJECT_GRACE_S = 1.0


class CallListener:
    def __init__(self, settings: TelephonySettings, handle_call: Callable[[OutboundConnection],
                 None], metrics: Metrics) -> None:
        self._settings = settings
        self._handle_call = handle_call
        self._metrics = metrics
        self._server: gevent.server.StreamServer | None = None
        self.active = 0
        self.idle = gevent.event.Event()     # set while no call is active
        self.idle.set()
        self._stopping = False

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None
        return self._server.address

    def start(self, sock=None) -> None:
        """Listen on ``sock`` (bound by tomctl.listeners), else on the configured port."""
        pool = gevent.pool.Pool(self._settings.max_calls + REJECT_HEADROOM)
        self._server = gevent.server.StreamServer(
            sock or (self._settings.listen_host, self._settings.listen_port), self._accept,
            spawn=pool)
        self._server.start()
        event(log, "listening", host=self._settings.listen_host, port=self.address[1])

    def close(self) -> None:
        """Hand new calls back to the dialplan; those in progress go on (until stop).

        The socket stays open: closing a listening socket resets the connections waiting in
        its backlog, and FreeSWITCH leaves a call whose socket ended before ``connect``
        parked for good."""
        self._stopping = True

    def stop(self, timeout_s: float = 5.0) -> None:
        """Wait up to ``timeout_s`` for the calls in progress, handing new ones back
        meanwhile, then end them and close the socket."""
        if self._server is None:
            return
        self.close()
        deadline = time.monotonic() + timeout_s
        self.idle.wait(timeout_s)
        # Calls still running are ended now; a hand-back under way gets a moment to finish.
        self._server.stop(timeout=max(REJECT_GRACE_S, deadline - time.monotonic()))

    def _accept(self, sock, address) -> None:
        connection = OutboundConnection(sock, self._settings.command_timeout_s)
        if self._stopping:
            self._reject(connection, "stopping")
            return
        if self.active >= self._settings.max_calls:
            self._reject(connection, "over capacity")
            return
        self.active += 1
        self.idle.clear()
        try:
            self._handle_call(connection)
        finally:
            self.active -= 1
            if not self.active:
                self.idle.set()
            connection.close()

    def _reject(self, connection: OutboundConnection, reason: str) -> None:
        event(log, "call_rejected", level=logging.WARNING, reason=reason,
              max_calls=self._settings.max_calls)
        self._metrics.record_call("rejected", 0.0)
        try:
            connection.connect()
        except TelephonyError:
            pass
        connection.close()
