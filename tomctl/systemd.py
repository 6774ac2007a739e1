"""systemd's notify protocol: READY when serving, a watchdog ping while the hub runs.

The ping comes from a greenlet, so a hub blocked for longer than WatchdogSec/2 misses it and
systemd restarts the service: exactly the failure no log line would report. Without systemd
(no NOTIFY_SOCKET) everything here does nothing.
"""

from __future__ import annotations

import os
import socket
from typing import Mapping

import gevent


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. "READY=1") to systemd; False when not run by systemd."""
    address = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):            # an abstract socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(state.encode())
    return True


class Watchdog:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = dict(os.environ if environ is None else environ)
        self._greenlet: gevent.Greenlet | None = None

    @property
    def interval_s(self) -> float | None:
        usec = self._environ.get("WATCHDOG_USEC", "")
        return int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 else None

    def start(self) -> None:
        if self.interval_s is not None and self._environ.get("NOTIFY_SOCKET"):
            self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill()

    def _run(self) -> None:
        while True:
            notify("WATCHDOG=1", self._environ)
            gevent.sleep(self.interval_s)
