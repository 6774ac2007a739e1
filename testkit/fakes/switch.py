"""FakeSwitch: a FreeSWITCH for tests, on 127.0.0.1, in the tests' own gevent hub.

It owns every greenlet and socket it makes (one Group), so stop() can take the whole
switch down at once, like a FreeSWITCH crash: no notices, no goodbyes.
"""

from __future__ import annotations

import time
from typing import Iterable

import gevent
import gevent.pool
from gevent import socket

from testkit.fakes.api import Api
from testkit.fakes.call import FakeCall
from testkit.fakes.channel import Core
from testkit.fakes.inbound import InboundConnection
from testkit.fakes.listener import EslConnection
from testkit.fakes.wire import Event


class FakeSwitch:
    def __init__(self, tom_address: tuple[str, int], password: str = "ClueCon",
                 fallback_extension: str = "operator", segment_writes: bool = False,
                 segment_max_bytes: int = 64, segment_seed: int = 1,
                 first_command_timeout_s: float = 25.0) -> None:
        self.tom_address = tom_address
        self.password = password
        self.fallback_extension = fallback_extension
        self.segment_writes = segment_writes
        self.segment_max_bytes = segment_max_bytes
        self.segment_seed = segment_seed
        self.first_command_timeout_s = first_command_timeout_s
        self.esl_port = 0
        self.calls: list[FakeCall] = []
        self.commands: list[str] = []   # command blocks received on inbound connections
        self.core = Core()
        self.api = Api(self)
        self.started_at = time.time()
        self.peak_sessions = 0
        self.stopping = False
        self._group = gevent.pool.Group()
        self._connections: set[EslConnection] = set()
        self._opened: list[EslConnection] = []
        self._server: socket.socket | None = None

    # -- life ----------------------------------------------------------------------------
    def start(self) -> None:
        """Open the inbound ESL listener; after stop(), on the same port again."""
        if self._server is not None:
            return
        if self.calls or self._opened:
            self.core = Core()   # a restarted FreeSWITCH has a new Core-UUID
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.esl_port))
        server.listen(64)
        self.esl_port = server.getsockname()[1]
        self._server = server
        self.started_at = time.time()
        self.spawn(self._accept_loop, server)

    def stop(self) -> None:
        """FreeSWITCH dies: every TCP connection and UDP socket closes abruptly."""
        self.stopping = True
        try:
            server, self._server = self._server, None
            if server is not None:
                server.close()
            for connection in list(self._connections):
                connection.abort()
            for call in self.calls:
                if not call.ended:
                    call._die()
            self._group.kill(block=True, timeout=5)
            self._connections.clear()
        finally:
            self.stopping = False

    def leaks(self) -> list[str]:
        """What is still alive after stop(): greenlets, TCP or UDP sockets."""
        found = []
        if len(self._group):
            found.append("%d greenlets alive" % len(self._group))
        found += ["TCP connection open: %r" % c for c in self._opened if not c.closed.is_set()]
        found += ["unicast socket open for %s" % call.uuid for call in self.calls
                  if call.session.unicast is not None]
        if self._server is not None:
            found.append("ESL listener open")
        return found

    # -- calls ---------------------------------------------------------------------------
    def place_call(self, caller_audio: bytes, caller_id_number: str = "4915112345678",
                   caller_id_name: str = "Test Caller", destination: str = "7000", *,
                   cng_frames: Iterable[int] = (), miss_park_event: bool = False,
                   a_uuid: str | None = None) -> FakeCall:
        """A caller dials ``destination``; the dialplan runs `socket <tom> async full`."""
        if self._server is None:
            raise RuntimeError("FakeSwitch.place_call before start()")
        call = FakeCall(self, caller_audio, caller_id_number, caller_id_name, destination,
                        cng_frames=cng_frames, miss_park_event=miss_park_event, a_uuid=a_uuid)
        self.calls.append(call)
        self.peak_sessions = max(self.peak_sessions, len(self.live_calls()))
        call.start()
        return call

    def live_calls(self) -> list[FakeCall]:
        return [call for call in self.calls
                if not (call.died or (call.hangup_complete and call.tcp_closed))]

    def find_call(self, uuid: str) -> FakeCall | None:
        return next((call for call in self.live_calls() if call.uuid == uuid), None)

    def find_call_by_a_leg(self, uuid: str) -> FakeCall | None:
        return next((call for call in self.live_calls() if call.a_uuid == uuid), None)

    # -- plumbing used by the parts ------------------------------------------------------
    def fire(self, event: Event) -> None:
        for connection in list(self._connections):
            connection.deliver(event)

    def spawn(self, function, *args) -> gevent.Greenlet:
        return self._group.spawn(function, *args)

    def spawn_later(self, seconds: float, function, *args) -> gevent.Greenlet:
        greenlet = gevent.Greenlet(function, *args)
        self._group.add(greenlet)
        greenlet.start_later(seconds)
        return greenlet

    def register(self, connection: EslConnection) -> None:
        self._connections.add(connection)
        self._opened.append(connection)

    def forget(self, connection: EslConnection) -> None:
        self._connections.discard(connection)

    def _accept_loop(self, server: socket.socket) -> None:
        while True:
            try:
                sock, _ = server.accept()
            except OSError:
                return
            connection = InboundConnection(self, sock)
            self.register(connection)
            connection.start()
