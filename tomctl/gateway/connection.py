"""One browser conversation over a WebSocket (wsproto does the framing).

The client authenticates with its first message, then streams 16 kHz s16le PCM as binary
messages and gets TOM's audio back the same way (20 ms, paced in real time) plus JSON events.
One greenlet reads and decides; one writer greenlet owns the socket's sending side, fed by a
bounded queue, so the reader, the paced sink and the conversation never interleave bytes.
Every refusal is a close code with a reason, counted in tom_gateway_refusals_total.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import gevent
import gevent.queue
from wsproto import WSConnection
from wsproto.events import (BytesMessage, CloseConnection, Message, Ping, TextMessage)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from tomctl.audio.sink import PacedSink
from tomctl.config import GatewaySettings
from tomctl.conversation.conversation import Conversation
from tomctl.gateway.auth import TokenRejected, TokenVerifier
from tomctl.gateway.limits import TokenBucket
from tomctl.logs import event

log = logging.getLogger(__name__)

RATE = 16000
FRAME_BYTES = RATE * 20 // 1000 * 2
AUTH_TIMEOUT_S = 5.0
OUTBOX_LIMIT = 500           # about 10 s of audio: a client that reads nothing is dropped
READ_BYTES = 65536
CONVERSATION_EVENTS = ("speech_started", "transcript", "transcript_dropped", "reply_text",
                       "reply_audio", "barge_in", "reply_done", "turn_ended", "error", "tool")


class Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class BrowserSink(PacedSink):
    """Paced like the phone; a clear also tells the page to drop what it buffered."""

    def __init__(self, send_frame, send_event, metrics) -> None:
        super().__init__(send_frame, RATE, metrics)
        self._send_event = send_event

    def clear(self) -> None:
        super().clear()
        self._send_event({"type": "clear"})


class BrowserConnection:
    def __init__(self, sock, ws: WSConnection, settings: GatewaySettings,
                 verifier: TokenVerifier, engine: Any, recordings: Any = None,
                 tools: Any = None, learning: Any = None) -> None:
        """``recordings``: the service's BrowserRecordings, or None while TOM_RECORDING=off;
        ``tools``: the service's ToolHub, or None; ``learning``: its BrowserLearning."""
        self._tools = tools
        self._learning = learning
        self._session: Any = None
        self._sock = sock
        self._ws = ws
        self._settings = settings
        self._verifier = verifier
        self._engine = engine
        self._outbox: gevent.queue.Queue = gevent.queue.Queue(OUTBOX_LIMIT)
        self._bucket = TokenBucket(settings.max_messages_per_s, settings.max_messages_per_s)
        self._partial = b""
        self._message = bytearray()
        self._conversation: Conversation | None = None
        self._sink: BrowserSink | None = None
        self._closing = False
        self._recordings = recordings
        self._recording: Any = None

    def run(self) -> None:
        """Serve until the client leaves or is refused; always cleans up."""
        writer = gevent.spawn(self._write)
        code, reason = 1000, "bye"
        try:
            with gevent.Timeout(AUTH_TIMEOUT_S, Refused(4408, "no auth message in time")):
                self._authenticate(self._next_message())
            self._start_conversation()
            while True:
                with gevent.Timeout(self._settings.idle_timeout_s, Refused(1001, "idle")):
                    message = self._next_message()
                self._handle(message)
        except Refused as refused:
            code, reason = refused.code, refused.reason
            if code not in (1000, 1001):
                self._engine.metrics.gateway_refusals.labels(reason=_reason_label(code)).inc()
            event(log, "browser_closed", code=code, reason=reason)
        except (OSError, RemoteProtocolError, LocalProtocolError) as exc:
            code, reason = 1002, "protocol error"
            event(log, "browser_lost", error=type(exc).__name__)
        finally:
            self._stop_conversation()
            self._send_close(code, reason)
            writer.join(timeout=2)
            writer.kill()

    # -- reading ----------------------------------------------------------------------------

    def _next_message(self) -> str | bytes:
        """The next whole message from the client, within the limits."""
        while True:
            for ws_event in self._ws.events():
                if isinstance(ws_event, CloseConnection):
                    raise Refused(1000, "client closed")
                if isinstance(ws_event, Ping):
                    self._post(self._ws.send(ws_event.response()))
                elif isinstance(ws_event, Message):
                    whole = self._collect(ws_event)
                    if whole is not None:
                        return whole
            data = self._sock.recv(READ_BYTES)
            if not data:
                raise Refused(1000, "client vanished")
            self._ws.receive_data(data)

    def _collect(self, message: Message) -> str | bytes | None:
        data = message.data.encode() if isinstance(message, TextMessage) else message.data
        self._message += data
        if len(self._message) > self._settings.max_message_bytes:
            raise Refused(1009, f"message over {self._settings.max_message_bytes} bytes")
        if not message.message_finished:
            return None
        if not self._bucket.take(time.monotonic()):
            raise Refused(1008, "too many messages")
        whole = bytes(self._message)
        self._message = bytearray()
        return whole.decode() if isinstance(message, TextMessage) else whole

    def _authenticate(self, message: str | bytes) -> None:
        request = _json(message)
        if request.get("type") != "auth":
            raise Refused(4401, "first message must be auth")
        token = request.get("token") or ""
        if not isinstance(token, str):
            raise Refused(4401, "token must be a string")
        try:
            self._verifier.verify(token)
        except TokenRejected as exc:
            raise Refused(4401, f"unauthorized: {exc}") from None
        if self._recordings is not None:     # the page's checkbox is the caller's consent
            self._recording = self._recordings.begin(RATE, request.get("record") is True)

    def _handle(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            self._feed(message)
            return
        request = _json(message)
        if request.get("type") == "interrupt":
            self._conversation.interrupt()
        elif request.get("type") == "feedback":
            if request.get("value") not in ("up", "down"):
                raise Refused(1003, "feedback must be up or down")
            if self._session is not None:
                self._session.thumbs(request["value"] == "up")
        else:
            raise Refused(1003, "unknown message type")

    def _feed(self, pcm: bytes) -> None:
        if len(pcm) % 2:
            raise Refused(1003, "audio must be 16-bit samples")
        buffer = self._partial + pcm
        whole = len(buffer) - len(buffer) % FRAME_BYTES
        for start in range(0, whole, FRAME_BYTES):
            self._conversation.feed(buffer[start:start + FRAME_BYTES])
            if self._recording is not None:
                self._recording.caller(buffer[start:start + FRAME_BYTES])
        self._partial = buffer[whole:]

    # -- the conversation ---------------------------------------------------------------------

    def _start_conversation(self) -> None:
        self._sink = BrowserSink(self._send_audio, self._send_event, self._engine.metrics)
        self._sink.start()
        variant = None
        if self._learning is not None:
            self._session = self._learning.begin(
                self._recording.call_id if self._recording is not None else None)
            variant = self._session.variant
        self._conversation = Conversation(self._engine, self._sink, RATE, self._on_event,
                                          "browser", self._tools, variant)
        self._conversation.start()
        self._send_event({"type": "ready", "rate": RATE})
        self._conversation.say("greeting")

    def _on_event(self, kind: str, **data: Any) -> None:
        if self._session is not None:
            self._session.on_event(kind, data)
        if kind in CONVERSATION_EVENTS:
            self._send_event({"type": kind, **data})

    def _stop_conversation(self) -> None:
        if self._conversation is not None:
            self._conversation.close()
        if self._sink is not None:
            self._sink.stop()
        if self._session is not None:        # after the recording's end, if it had one
            self._session.end(own_record=self._recording is None)
        if self._recording is not None:
            self._recordings.end(self._recording)

    def _send_audio(self, frame: bytes) -> None:
        self._post(self._ws.send(BytesMessage(frame)))
        if self._recording is not None:
            self._recording.tom(frame)

    # -- writing ----------------------------------------------------------------------------

    def _send_event(self, payload: dict) -> None:
        self._post(self._ws.send(TextMessage(json.dumps(payload))))

    def _post(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            self._outbox.put_nowait(data)
        except gevent.queue.Full:
            self._closing = True      # the client reads nothing: let the reader end it
            self._sock.close()

    def _write(self) -> None:
        while True:
            data = self._outbox.get()
            if data is None:
                return
            try:
                self._sock.sendall(data)
            except OSError:
                return

    def _send_close(self, code: int, reason: str) -> None:
        """Queue the close frame behind what is already queued, then end the writer."""
        try:
            self._post(self._ws.send(CloseConnection(code=code, reason=reason)))
        except LocalProtocolError:
            pass                      # the close handshake already happened
        self._closing = True
        self._outbox.put(None)


def _json(message: str | bytes) -> dict:
    if isinstance(message, bytes):
        raise Refused(1003, "expected a JSON text message")
    try:
        value = json.loads(message)
    except ValueError:
        raise Refused(1007, "malformed JSON") from None
    if not isinstance(value, dict):
        raise Refused(1007, "JSON message must be an object")
    return value


def _reason_label(code: int) -> str:
    return {4401: "unauthorized", 4408: "auth_timeout", 1009: "too_big", 1008: "rate_limit",
            1003: "bad_data", 1007: "bad_data", 1002: "protocol"}.get(code, str(code))
