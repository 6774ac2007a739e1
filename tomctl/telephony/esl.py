"""greenswitch's ESL sessions, wrapped: TOM's parser, deadlines, and no personal data in logs.

greenswitch (v0.0.19) supplies the session objects: the in-order reply queue that matches
each command to its reply, event dispatch to registered handlers on its own greenlet,
the outbound ``connect``/``myevents``/``linger`` steps and the inbound authentication.
Four things are replaced, each for a reason found in its source (ESL-FACTS.md section 6):

* reading: greenswitch URL-decodes a whole header block before splitting it, so an encoded
  ``%0A`` in a caller's name forges headers, and it does not separate event bodies. TOM reads
  raw bytes through :class:`~tomctl.telephony.wire.FrameParser`, which also survives any TCP
  segmentation and rejects malformed frames with :class:`EslProtocolError`;
* sending: ``send()`` waits forever and may write part of a command. Here every command has
  a deadline; a command that misses it leaves the reply queue out of step, so the connection
  is closed (its call then falls back to the dialplan);
* a disconnect or a closed socket releases every waiter with :class:`CallGone`; the linger
  notice does not (the socket stays usable while FreeSWITCH lingers);
* greenswitch's own handlers (one logs the caller's number at hangup) are replaced by the
  owner's: :meth:`on_events` hands every event to the greenlet that owns the call.
"""

from __future__ import annotations

import logging
from typing import Callable

import gevent
import gevent.event
import gevent.socket
import greenswitch.esl

from tomctl.errors import CallGone, CommandFailed, CommandTimeout, EslProtocolError
from tomctl.logs import event
from tomctl.telephony import wire

log = logging.getLogger(__name__)

READ_BYTES = 65536
EventHandler = Callable[[wire.Event], None]


class _Wrapped:
    """Mixed into greenswitch's session classes (listed first, so these methods win)."""

    sock: gevent.socket.socket
    connected: bool
    _run: bool
    _commands_sent: list
    _esl_event_queue: gevent.queue.Queue
    _receive_events_greenlet: gevent.Greenlet | None
    _process_events_greenlet: gevent.Greenlet | None

    def _setup_wrapper(self) -> None:
        self._parser = wire.FrameParser()
        self.closed = gevent.event.Event()
        self.close_reason = ""
        self.protocol_error: EslProtocolError | None = None
        self._disconnect_handlers: list[Callable[[str], None]] = []

    # -- reading --------------------------------------------------------------------------

    def receive_events(self) -> None:
        reason = "closed by FreeSWITCH"
        try:
            while self._run:
                data = self.sock.recv(READ_BYTES)
                if not data:
                    break
                for frame in self._parser.feed(data):
                    self._dispatch(frame)
                    if not self._run:
                        break
        except EslProtocolError as exc:
            reason = "protocol error"
            self.protocol_error = exc
            event(log, "esl_protocol_error", level=logging.ERROR, error=str(exc))
        except OSError as exc:
            reason = f"socket error: {exc.strerror or exc}"
        self._lost(reason)

    def _dispatch(self, frame: wire.Frame) -> None:
        kind = frame.content_type
        if kind in ("command/reply", "api/response"):
            if not self._commands_sent:
                raise EslProtocolError(f"unexpected {kind} with no command waiting")
            self._commands_sent.pop(0).set(frame)
        elif kind == "text/event-plain":
            self._esl_event_queue.put(wire.parse_event(frame))
        elif kind == "text/disconnect-notice":
            if frame.get("Content-Disposition") != "linger":
                self.connected = False
            self._esl_event_queue.put(wire.Event({**frame.headers, "Event-Name": "DISCONNECT"},
                                                 frame.body.decode("utf-8", "replace")))
        elif kind == "auth/request":
            self._auth_request_event.set()  # type: ignore[attr-defined]
        elif kind == "text/rude-rejection":
            raise EslProtocolError("FreeSWITCH refused the connection (ACL)")
        elif kind == "log/data":
            pass                               # TOM never asks for logs
        else:
            raise EslProtocolError(f"unknown frame type {kind!r:.60}")

    def _lost(self, reason: str) -> None:
        """The connection is over: close it once and release every waiter."""
        if self.closed.is_set():
            return
        self.close_reason = reason
        self.connected = False
        self._run = False
        for resource in (getattr(self, "sock", None), getattr(self, "sock_file", None)):
            try:
                if resource is not None:
                    resource.close()    # both: the socket stays open while its file is
            except OSError:
                pass
        pending, self._commands_sent[:] = list(self._commands_sent), []
        for waiter in pending:
            waiter.set_exception(CallGone(reason))
        self.closed.set()
        for handler in self._disconnect_handlers:
            handler(reason)

    # -- sending --------------------------------------------------------------------------

    def request(self, data: bytes, timeout_s: float) -> wire.Frame:
        """Send one command block and return its reply frame, within ``timeout_s``."""
        if not self.connected or self.closed.is_set():
            raise CallGone(self.close_reason or "not connected")
        waiter = gevent.event.AsyncResult()
        self._commands_sent.append(waiter)
        try:
            self.sock.sendall(data)
            return waiter.get(timeout=timeout_s)
        except gevent.Timeout:
            self._lost("command timed out")
            raise CommandTimeout(f"no reply within {timeout_s}s") from None
        except OSError as exc:
            self._lost(f"socket error: {exc.strerror or exc}")
            raise CallGone(self.close_reason) from None

    def send(self, data: str) -> wire.Frame:          # greenswitch's own helpers call this
        return self.request(wire.command(data), self.command_timeout_s)

    def command_ok(self, data: bytes, timeout_s: float) -> str:
        """Send a command whose Reply-Text must start with +OK; return that text."""
        reply = self.request(data, timeout_s).get("Reply-Text")
        if not reply.startswith("+OK"):
            raise CommandFailed(reply.strip()[:200] or "empty reply")
        return reply

    def api(self, data: bytes, timeout_s: float) -> str:
        """An ``api`` command's output; ``-ERR``/``-USAGE`` output raises CommandFailed."""
        output = self.request(data, timeout_s).body.decode("utf-8", "replace")
        if output.startswith("-"):
            raise CommandFailed(output.strip()[:200])
        return output

    def on_events(self, handler: EventHandler) -> None:
        """Every event (and disconnect notice, as Event-Name DISCONNECT) goes to ``handler``."""
        self.event_handlers.clear()  # type: ignore[attr-defined]
        for name in ("*", "CHANNEL_HANGUP", "DISCONNECT"):
            self.register_handle(name, handler)  # type: ignore[attr-defined]

    def on_lost(self, handler: Callable[[str], None]) -> None:
        self._disconnect_handlers.append(handler)

    def close(self) -> None:
        """Close now, without the goodbye: for a connection that is already broken."""
        self._lost("closed by TOM")
        for greenlet in (self._receive_events_greenlet, self._process_events_greenlet):
            if greenlet is not None and greenlet is not gevent.getcurrent():
                greenlet.kill(block=False)


class OutboundConnection(_Wrapped, greenswitch.esl.OutboundSession):
    """The socket FreeSWITCH opened for one channel (``socket ... async full``)."""

    def __init__(self, sock: gevent.socket.socket, command_timeout_s: float) -> None:
        self.command_timeout_s = command_timeout_s
        self._setup_wrapper()
        greenswitch.esl.OutboundSession.__init__(self, None, sock)
        self.on_events(lambda _: None)

    def exit(self, timeout_s: float) -> None:
        """Say goodbye (``exit``), then close. Safe on a connection already gone."""
        try:
            if self.connected:
                self.request(wire.command("exit"), timeout_s)
        except (CallGone, CommandTimeout):
            pass
        self.close()


class InboundConnection(_Wrapped, greenswitch.esl.InboundESL):
    """TOM's own connection to FreeSWITCH's event socket (port 8021), for global commands."""

    def __init__(self, host: str, port: int, password: str, command_timeout_s: float) -> None:
        self.command_timeout_s = command_timeout_s
        self._setup_wrapper()
        greenswitch.esl.InboundESL.__init__(self, host, port, password,
                                            timeout=command_timeout_s)

    def connect(self) -> None:
        """Connect and authenticate within the command deadline (greenswitch waits forever
        for the banner)."""
        with gevent.Timeout(self.command_timeout_s,
                            CommandTimeout("no auth/request banner from FreeSWITCH")):
            self.sock = gevent.socket.create_connection((self.host, self.port))
            self.sock.setsockopt(gevent.socket.IPPROTO_TCP, gevent.socket.TCP_NODELAY, 1)
            self.sock_file = self.sock.makefile("rb")
            self.connected = True
            self.start_event_handlers()
            self._auth_request_event.wait()
        if self.closed.is_set():
            raise CallGone(self.close_reason)
        reply = self.request(wire.command(f"auth {wire.check_value(self.password)}"),
                             self.command_timeout_s).get("Reply-Text")
        if reply != "+OK accepted":
            self.close()
            raise CommandFailed("FreeSWITCH refused the ESL password (TOM_FS_PASSWORD)")
