"""TOM's own ESL connection to FreeSWITCH, for global commands (status, originate, transfer).

It reconnects with exponential backoff whenever FreeSWITCH restarts or the socket dies, and
checks the link with ``api status`` every HEARTBEAT_S, so a FreeSWITCH that hangs without
closing the socket is noticed too. Callers get :class:`LinkDown` at once while it is down,
rather than waiting.
"""

from __future__ import annotations

import logging
import time

import gevent

from tomctl.config import TelephonySettings
from tomctl.errors import LinkDown, TelephonyError
from tomctl.logs import event
from tomctl.metrics import Metrics
from tomctl.telephony import wire
from tomctl.telephony.esl import InboundConnection

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 0.5
# FreeSWITCH runs on the same host or next to it: a try a second costs nothing, and the link
# is back within about a second of FreeSWITCH accepting again, however long it was away.
BACKOFF_MAX_S = 1.0
HEARTBEAT_S = 15.0


class FreeSwitchLink:
    def __init__(self, settings: TelephonySettings, metrics: Metrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._connection: InboundConnection | None = None
        self._greenlet: gevent.Greenlet | None = None
        self.state = "disabled" if not settings.fs_password else "connecting"
        self.connects = 0            # successful connections so far
        self.last_error = ""
        self.last_error_at = 0.0     # time.time() of last_error

    def start(self) -> None:
        if self._settings.fs_password:
            self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=2)
        if self._connection is not None:
            self._connection.close()
        self.state = "disabled" if not self._settings.fs_password else "down"

    def api(self, name: str, *args: str) -> str:
        """Run ``api name args`` on FreeSWITCH; LinkDown while the link is not up."""
        connection = self._connection
        if self.state != "up" or connection is None:
            raise LinkDown(f"FreeSWITCH event socket is {self.state}")
        return connection.api(wire.api(name, *args), self._settings.command_timeout_s)

    def _run(self) -> None:
        backoff = BACKOFF_FIRST_S
        while True:
            settings = self._settings
            connection = InboundConnection(settings.fs_host, settings.fs_port,
                                           settings.fs_password, settings.command_timeout_s)
            try:
                connection.connect()
            except (TelephonyError, OSError) as exc:
                connection.close()
                self._down(f"{type(exc).__name__}: {exc}")
                gevent.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            self._connection, self.state, backoff = connection, "up", BACKOFF_FIRST_S
            self.connects += 1
            self._metrics.esl_link_up.set(1)
            event(log, "esl_link_up", host=settings.fs_host, port=settings.fs_port)
            while not connection.closed.wait(timeout=HEARTBEAT_S):
                try:
                    connection.api(wire.api("status"), settings.command_timeout_s)
                except TelephonyError:
                    break
            connection.close()
            self._connection = None
            self._down(connection.close_reason)

    def _down(self, reason: str) -> None:
        if self.state != "down":
            event(log, "esl_link_down", level=logging.WARNING, reason=reason)
        self.state, self.last_error, self.last_error_at = "down", reason, time.time()
        self._metrics.esl_link_up.set(0)
