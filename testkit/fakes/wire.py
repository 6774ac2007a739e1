"""ESL bytes exactly as FreeSWITCH writes them, and a reader for what clients send.

Written from /work/shared/freeswitch/ESL-FACTS.md and the real captures in
tests/data/freeswitch/; it deliberately shares nothing with tomctl's own parser.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

import gevent

# ESL-FACTS 1.6 (switch_utils.c switch_url_encode_opt): only upper-case hex counts as an
# already-encoded "%XX"; every byte below space or above "~" is encoded too.
_HEX = b"0123456789ABCDEF"
_UNSAFE = frozenset(b'\r\n #%&+:;<=>?@[\\]^`{|}"')

# ESL-FACTS 1.9: the 67-byte goodbye body of every final disconnect notice.
GOODBYE = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
# ESL-FACTS 1.2: a client Content-Length above this (or below 0) drops the connection.
MAX_CONTENT_LENGTH = 16 * 1024 * 1024


def url_encode(value: str) -> str:
    raw = value.encode("utf-8")
    out = []
    for index, byte in enumerate(raw):
        if (byte == 0x25 and index + 2 < len(raw) and raw[index + 1] in _HEX
                and raw[index + 2] in _HEX):
            out.append("%")
        elif byte < 0x20 or byte > 0x7E or byte in _UNSAFE:
            out.append("%%%02X" % byte)
        else:
            out.append(chr(byte))
    return "".join(out)


Headers = list[tuple[str, str]]


@dataclass
class Event:
    """One fired event: ordered headers (duplicates allowed, CAPTURES 7 shows Hangup-Cause
    twice on CHANNEL_HANGUP_COMPLETE) and an optional body."""
    name: str
    headers: Headers
    body: str | None = None

    def get(self, name: str, default: str | None = None) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return default


def serialize_plain(headers: Headers, body: str | None = None) -> bytes:
    """switch_event_serialize with encoding on (ESL-FACTS 1.6)."""
    text = "".join("%s: %s\n" % (name, url_encode(value) or "_undef_")
                   for name, value in headers)
    data = text.encode("utf-8")
    if body:
        raw_body = body.encode("utf-8")
        return data + b"Content-Length: %d\n\n" % len(raw_body) + raw_body
    return data + b"\n"


def serialize_json(headers: Headers, body: str | None = None) -> bytes:
    """ESL-FACTS 1.6 json: one compact object, raw values, duplicate keys kept in order."""
    parts = [json.dumps(name, ensure_ascii=False) + ":" + json.dumps(value, ensure_ascii=False)
             for name, value in headers]
    if body:
        parts.append('"Content-Length":"%d"' % len(body.encode("utf-8")))
        parts.append('"_body":' + json.dumps(body, ensure_ascii=False))
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def event_frame(event: Event, fmt: str = "plain") -> bytes:
    # ESL-FACTS 1.6 / CAPTURES 4: Content-Length comes first, then Content-Type.
    payload = (serialize_json if fmt == "json" else serialize_plain)(event.headers, event.body)
    return b"Content-Length: %d\nContent-Type: text/event-%s\n\n%s" % (
        len(payload), fmt.encode(), payload)


def command_reply(text: str, extra: Headers = ()) -> bytes:
    # ESL-FACTS 1.3/1.4: replies are never URL-encoded and never have a body.
    lines = ["Content-Type: command/reply", "Reply-Text: " + text]
    lines += ["%s: %s" % pair for pair in extra]
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def api_response(body: str) -> bytes:
    # ESL-FACTS 1.5: Content-Type before Content-Length here; empty output becomes -ERR no reply.
    raw = (body or "-ERR no reply\n").encode("utf-8")
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(raw) + raw


AUTH_REQUEST = b"Content-Type: auth/request\n\n"


def disconnect_notice(session_uuid: str | None = None) -> bytes:
    # CAPTURES 4 (inbound exit) and 7 (outbound): the session form adds two headers.
    head = "Content-Type: text/disconnect-notice\n"
    if session_uuid:
        head += "Controlled-Session-UUID: %s\nContent-Disposition: disconnect\n" % session_uuid
    head += "Content-Length: %d\n\n" % len(GOODBYE)
    return head.encode() + GOODBYE


def linger_notice(session_uuid: str, channel_name: str, linger_s: int) -> bytes:
    # CAPTURES 7 (s1: Linger-Time -1, s3: Linger-Time 3).
    return ("Content-Type: text/disconnect-notice\nControlled-Session-UUID: %s\n"
            "Content-Disposition: linger\nChannel-Name: %s\nLinger-Time: %d\n"
            "Content-Length: 0\n\n" % (session_uuid, channel_name, linger_s)).encode()


@dataclass
class Command:
    """One command block from a client: its first line, headers and body."""
    raw: str
    line: str
    headers: Headers = field(default_factory=list)
    body: str = ""

    def header(self, name: str, default: str | None = None) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return default


class ProtocolViolation(Exception):
    """The client sent something that makes FreeSWITCH drop the connection."""


class CommandReader:
    """Splits the client's byte stream into command blocks (ESL-FACTS 1.2): only "\\n"
    counts, "\\r" is ignored, leading blank lines are skipped, Content-Length reads a body."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[Command]:
        self._buffer += data
        commands = []
        while True:
            command = self._next()
            if command is None:
                return commands
            commands.append(command)

    def _next(self) -> Command | None:
        stripped = self._buffer.lstrip(b"\r\n")
        skipped = len(self._buffer) - len(stripped)
        end = _block_end(stripped)
        if end is None:
            return None
        block, after = stripped[:end[0]], end[1]
        lines = [line.replace(b"\r", b"").decode("utf-8", "replace")
                 for line in block.split(b"\n")]
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.lstrip(" ")))
        length_text = next((v for k, v in headers if k.lower() == "content-length"), None)
        body = b""
        if length_text is not None:
            try:
                length = int(length_text)
            except ValueError:
                length = 0
            if length < 0 or length > MAX_CONTENT_LENGTH:
                raise ProtocolViolation("bad Content-Length")
            if len(stripped) < after + length:
                return None
            body = stripped[after:after + length]
            after += length
        raw = stripped[:after]
        self._buffer = self._buffer[skipped + after:]
        return Command(raw=raw.decode("utf-8", "replace"), line=lines[0].strip(),
                       headers=headers, body=body.decode("utf-8", "replace"))


def _block_end(data: bytes) -> tuple[int, int] | None:
    """(end of the header block, start of what follows) once a line empty after removing
    "\\r" has been seen."""
    start = 0
    while True:
        newline = data.find(b"\n", start)
        if newline < 0:
            return None
        following = newline + 1
        rest = data.find(b"\n", following)
        if rest < 0:
            return None
        if data[following:rest].replace(b"\r", b"") == b"":
            return newline, rest + 1
        start = following


def write_frame(sock, frame: bytes, rng: random.Random | None, max_segment: int) -> None:
    """Write one frame; with ``rng`` split it into random small writes of 1..max_segment
    bytes so a reader sees it arrive in pieces (CAPTURES 10-a3 shows an event's outer
    headers and body in two recv() calls). gevent.idle() between writes, not sleep(0): only
    a pass through the hub's I/O poll lets a reader in the same process see each piece."""
    if rng is None:
        sock.sendall(frame)
        return
    position = 0
    while position < len(frame):
        size = rng.randint(1, max_segment)
        sock.sendall(frame[position:position + size])
        position += size
        gevent.idle()
