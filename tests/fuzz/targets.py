"""Fuzz targets: each takes one input's bytes and raises only when TOM misbehaves.

Every target states its property in its docstring. An exception the production code turns
into a clean refusal at that boundary (EslProtocolError ends one ESL connection, a
ValueError or h11 error is a 400, Refused is a WebSocket close code, TokenRejected a 4401)
is the expected outcome; any other exception, a failed assertion, a hang (libFuzzer's
-timeout) or runaway memory (-rss_limit_mb) is a finding. Run by tests/fuzz/run.py.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time

import atheris
import h11
import jwt

from tomctl import config
from tomctl.errors import EslProtocolError, UnsafeCommandValue
from tomctl.gateway import auth, connection, server
from tomctl.metrics import Metrics
from tomctl.recording import qc
from tomctl.telephony import wire
from tomctl.tools import catalogue

SECRET = "a-fuzzing-secret-of-enough-length-for-hs256"
GATEWAY = config.load({"TOM_JWT_SECRET": SECRET, "TOM_GATEWAY_MAX_MESSAGE_BYTES": "4096",
                       "TOM_GATEWAY_MAX_MESSAGES_PER_S": "1000"}).gateway
SPOOL = tempfile.mkdtemp(prefix="tom-fuzz-spool-")


# -- ESL ---------------------------------------------------------------------------------------

def esl_parser(data: bytes) -> None:
    """Bytes from FreeSWITCH, cut anywhere: frames or EslProtocolError, and the cuts never
    change what is parsed."""
    fdp = atheris.FuzzedDataProvider(data)
    cuts = sorted(fdp.ConsumeIntListInRange(fdp.ConsumeIntInRange(0, 8), 0, 4096))
    stream = fdp.ConsumeBytes(fdp.remaining_bytes())
    whole = _parse_all([stream])
    pieces = _parse_all([stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])])
    assert whole == pieces, (whole, pieces)


def _parse_all(chunks: list[bytes]) -> tuple[list, bool]:
    parser, frames = wire.FrameParser(), []
    try:
        for chunk in chunks:
            for frame in parser.feed(chunk):
                frames.append(frame)
                if frame.content_type == "text/event-plain":
                    frames.append(wire.parse_event(frame))
    except EslProtocolError:
        return frames, True
    return frames, False


def esl_commands(data: bytes) -> None:
    """Caller- or peer-controlled text on its way into a command: refused, or one command
    block with no CR, no LF inside a line, and no path outside the spool."""
    fdp = atheris.FuzzedDataProvider(data)
    text = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 200))
    other = fdp.ConsumeUnicodeNoSurrogates(200)
    builders = [
        lambda: wire.command(text, {other: text}),
        lambda: wire.api("uuid_broadcast", text, other),
        lambda: wire.api(text, other),
        lambda: wire.execute("playback", text, wire.new_uuid()),
        lambda: wire.execute(text, other, other),
        lambda: wire.hangup(text),
        lambda: wire.unicast(text, 4000, "127.0.0.1", 5000),
    ]
    for build in builders:
        try:
            block = build()
        except UnsafeCommandValue:
            continue
        assert block.endswith(b"\n\n") and b"\n\n" not in block[:-2], block
        assert b"\r" not in block and b"\0" not in block, block
    try:
        path = wire.spool_path(SPOOL, text)
    except UnsafeCommandValue:
        return
    assert os.path.dirname(path) == os.path.realpath(SPOOL), path


# -- the browser gateway ----------------------------------------------------------------------

def gateway_head(data: bytes) -> None:
    """An HTTP request head: a page, an upgrade, or an error the gateway answers with 400."""
    try:
        http, request = server._parse(data)
        if server._is_upgrade(request):
            server._handshake(data)
    except (ValueError, h11.RemoteProtocolError):
        pass


class _Socket:
    """What BrowserConnection reads: the fuzzed bytes in the fuzzed cuts, then EOF."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks
        self.sent = 0

    def recv(self, size: int) -> bytes:
        return self._chunks.pop(0)[:size] if self._chunks else b""

    def sendall(self, data: bytes) -> None:
        self.sent += len(data)

    def close(self) -> None:
        self._chunks = []


class _Conversation:
    def __init__(self) -> None:
        self.frames = 0

    def feed(self, frame: bytes) -> None:
        assert len(frame) == connection.FRAME_BYTES
        self.frames += 1

    def interrupt(self) -> None:
        pass

    def close(self) -> None:
        pass


class _Engine:
    metrics = Metrics()


class _Intake(connection.BrowserConnection):
    """The real reader, refusals and message handling; only the conversation is a stand-in."""

    def _start_conversation(self) -> None:
        self._conversation = _Conversation()


def gateway_websocket(data: bytes) -> None:
    """A client's WebSocket bytes after the handshake (an auth message, JSON events such as
    interrupt and feedback, audio, pings, fragments, junk): BrowserConnection.run ends
    with a close code, never with an exception."""
    fdp = atheris.FuzzedDataProvider(data)
    stream = b""
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        kind = fdp.ConsumeIntInRange(0, 6)
        if kind == 0:
            claims = {"aud": fdp.PickValueInList(["tom-gateway", "x"]), "iat": int(time.time()),
                      "exp": int(time.time()) + fdp.ConsumeIntInRange(-100, 600),
                      "jti": fdp.ConsumeUnicodeNoSurrogates(8)}
            message = json.dumps({"type": "auth", "token": jwt.encode(claims, SECRET, "HS256")})
            stream += _frame(TEXT, message.encode())
        elif kind == 1:
            stream += _frame(TEXT, fdp.ConsumeUnicodeNoSurrogates(64).encode(),
                             fdp.ConsumeBool())
        elif kind == 2:
            stream += _frame(BINARY, fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 2000)),
                             fdp.ConsumeBool())
        elif kind == 3:
            stream += _frame(PING, fdp.ConsumeBytes(8))
        elif kind == 4:     # any opcode, reserved ones too; masked or not
            stream += _frame(fdp.ConsumeIntInRange(0, 15), fdp.ConsumeBytes(32),
                             fdp.ConsumeBool(), fdp.ConsumeBool())
        elif kind == 5:     # the events a page sends, with any value
            value = fdp.PickValueInList(["up", "down", fdp.ConsumeUnicodeNoSurrogates(8),
                                         fdp.ConsumeInt(4), None, [], {}])
            message = json.dumps({"type": fdp.PickValueInList(["interrupt", "feedback", ""]),
                                  "value": value})
            stream += _frame(TEXT, message.encode())
        else:
            stream += fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64))
    stream += fdp.ConsumeBytes(fdp.remaining_bytes())
    cuts = sorted({min(len(stream), n) for n in range(0, len(stream), 1 + len(stream) // 3)})
    chunks = [stream[a:b] for a, b in zip(cuts, [*cuts[1:], len(stream)])] or [b""]
    ws = server._handshake(HANDSHAKE)
    ws.send(server.AcceptConnection())
    intake = _Intake(_Socket(chunks), ws, GATEWAY, auth.TokenVerifier(GATEWAY), _Engine())
    intake.run()       # raises only on a finding


TEXT, BINARY, PING = 1, 2, 9


def _frame(opcode: int, payload: bytes, fin: bool = True, masked: bool = True) -> bytes:
    """One WebSocket frame as a client writes it (RFC 6455 5.2), masked unless told not."""
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    bit = 0x80 if masked else 0
    if size < 126:
        head += bytes([bit | size])
    elif size < 65536:
        head += bytes([bit | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([bit | 127]) + size.to_bytes(8, "big")
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


HANDSHAKE = (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://127.0.0.1\r\n"
             b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


# -- JWT ---------------------------------------------------------------------------------------

def jwt_token(data: bytes) -> None:
    """Any token text, or any claims signed with the right key: claims, or TokenRejected;
    a token that passes is never accepted twice."""
    fdp = atheris.FuzzedDataProvider(data)
    verifier = auth.TokenVerifier(GATEWAY)
    if fdp.ConsumeBool():
        token = fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes())
    else:
        try:
            claims = json.loads(fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes()))
        except ValueError:
            return
        if not isinstance(claims, dict):
            return
        try:
            token = jwt.encode(claims, SECRET, "HS256")
        except (TypeError, ValueError):
            return
    try:
        verifier.verify(token)
    except auth.TokenRejected:
        return
    try:
        verifier.verify(token)
    except auth.TokenRejected as exc:
        assert str(exc) == "token already used", exc
    else:
        assert token == "", "a token was accepted twice"


# -- recordings --------------------------------------------------------------------------------

def wav_qc(data: bytes) -> None:
    """Any bytes as a WAV for `tomctl qc`: a report with a verdict, or QcError."""
    try:
        samples, rate = qc.read_wav("fuzzed.wav", io.BytesIO(data))
    except qc.QcError:
        return
    for report in qc.check_samples(samples[:rate * 10], rate):
        assert report.verdict in qc.RANK


def catalogue_csv(data: bytes) -> None:
    """Any text as a catalogue CSV: parts that keep the catalogue's rules and bad rows with
    their line numbers, or CatalogueError."""
    text = data.decode("utf-8", "replace")
    try:
        parts, bad = catalogue.read_parts(io.StringIO(text, newline=""), "fuzzed.csv")
    except catalogue.CatalogueError:
        return
    for part in parts:
        assert catalogue._PART_NUMBER.match(part.part_number), part
        assert 1900 <= part.year_from <= part.year_to <= 2100 and part.stock >= 0, part
        assert 0 <= part.price <= 1_000_000 and part.make and part.model, part
    assert all(line >= 1 and why for line, why in bad), bad


TARGETS = {"esl_parser": esl_parser, "esl_commands": esl_commands,
           "gateway_head": gateway_head, "gateway_websocket": gateway_websocket,
           "jwt_token": jwt_token, "wav_qc": wav_qc, "catalogue_csv": catalogue_csv}
