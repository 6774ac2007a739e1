"""The Event Socket wire format, without sockets: frame parsing and command building (pure).

A frame is a block of ``Name: value`` lines ended by an empty line, followed by
``Content-Length`` bytes of body when that header is present. FreeSWITCH URL-encodes the
values of events and of the ``connect`` reply (``Reply-Text: %2BOK%0A``), so every value is
decoded after the block has been split into lines: decoding first would let an encoded
``%0A`` in a caller's name forge a header. The body of a ``text/event-plain`` frame is
itself a header block (plus an optional inner body) and is parsed the same way.

Everything TOM puts into a command passes a validator here: a value containing CR or LF
would end the command early and start another one on FreeSWITCH's side.
"""

from __future__ import annotations

import dataclasses
import os
import re
import uuid as uuid_module
from collections.abc import Iterator
from urllib.parse import unquote

from tomctl.errors import EslProtocolError, UnsafeCommandValue

# FreeSWITCH drops a connection announcing more than 16 MiB (mod_event_socket's
# MAX_CONTENT_LENGTH); a peer that does so is not FreeSWITCH.
MAX_BODY_BYTES = 16 * 1024 * 1024
# The connect reply carries ~100 headers (~4 KiB); events with every channel variable ~10 KiB.
MAX_HEADER_BLOCK_BYTES = 256 * 1024

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TOKEN = re.compile(r"^[A-Za-z0-9_.+@-]{1,64}$")   # extensions, contexts, hangup causes, ids


@dataclasses.dataclass(frozen=True)
class Frame:
    headers: dict[str, str]
    body: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    def get(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)


@dataclasses.dataclass(frozen=True)
class Event:
    """One event: its (decoded) headers and its body, e.g. a BACKGROUND_JOB's api output."""

    headers: dict[str, str]
    body: str = ""

    @property
    def name(self) -> str:
        return self.headers.get("Event-Name", "")

    def get(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)


def parse_header_block(block: bytes) -> dict[str, str]:
    """``Name: value`` lines → dict; each value URL-decoded after splitting. A repeated
    name keeps its first value (CHANNEL_HANGUP_COMPLETE carries Hangup-Cause twice)."""
    headers: dict[str, str] = {}
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EslProtocolError(f"header block is not UTF-8: {exc}") from None
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise EslProtocolError(f"malformed header line {line[:80]!r}")
        headers.setdefault(name, unquote(value[1:] if value.startswith(" ") else value))
    return headers


class FrameParser:
    """Feed bytes as they arrive (any TCP segmentation); get complete frames back."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._headers: dict[str, str] | None = None
        self._body_length = 0
        self._searched = 0     # bytes already searched for the blank line: never rescan

    @property
    def pending_bytes(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> Iterator[Frame]:
        """The frames ``data`` completes, one at a time: those before a malformed one are
        still handed out before the EslProtocolError (tests/fuzz found them lost)."""
        self._buffer += data
        while (frame := self._next_frame()) is not None:
            yield frame

    def _next_frame(self) -> Frame | None:
        if self._headers is None:
            # FreeSWITCH never sends stray newlines between frames, but tolerate them.
            while self._buffer[:1] in (b"\n", b"\r"):
                del self._buffer[:1]
            end = self._buffer.find(b"\n\n", max(0, self._searched - 1))
            if end < 0:
                self._searched = len(self._buffer)
                if len(self._buffer) > MAX_HEADER_BLOCK_BYTES:
                    raise EslProtocolError("header block too long")
                return None
            self._searched = 0
            self._headers = parse_header_block(bytes(self._buffer[:end]))
            del self._buffer[:end + 2]
            self._body_length = _content_length(self._headers)
        if len(self._buffer) < self._body_length:
            return None
        body = bytes(self._buffer[:self._body_length])
        del self._buffer[:self._body_length]
        frame = Frame(self._headers, body)
        self._headers = None
        return frame


def _content_length(headers: dict[str, str]) -> int:
    raw = headers.get("Content-Length")
    if raw is None:
        return 0
    if not raw.isdigit():
        raise EslProtocolError(f"bad Content-Length {raw[:20]!r}")
    length = int(raw)
    if length > MAX_BODY_BYTES:
        raise EslProtocolError(f"Content-Length {length} over {MAX_BODY_BYTES}")
    return length


def parse_event(frame: Frame) -> Event:
    """The event carried by a ``text/event-plain`` frame."""
    if frame.content_type != "text/event-plain":
        raise EslProtocolError(f"not a plain event: {frame.content_type!r}")
    block, sep, rest = frame.body.partition(b"\n\n")
    headers = parse_header_block(block)
    if "Event-Name" not in headers:
        raise EslProtocolError("event without Event-Name")
    body = b""
    if sep and "Content-Length" in headers:
        body = rest[:_content_length(headers)]
    return Event(headers, body.decode("utf-8", "replace"))


# -- validation of everything that goes into a command --------------------------------------

def check_uuid(value: str) -> str:
    if not isinstance(value, str) or not _UUID.match(value):
        raise UnsafeCommandValue(f"not a FreeSWITCH uuid: {value!r:.60}")
    return value


def check_token(value: str) -> str:
    """Extensions, dialplan contexts, hangup causes, prompt ids: short, no spaces."""
    if not isinstance(value, str) or not _TOKEN.match(value):
        raise UnsafeCommandValue(f"not a plain token: {value!r:.60}")
    return value


def check_value(value: str) -> str:
    """A header value or argument: no control characters (CR/LF would start a new command)."""
    if not isinstance(value, str) or _CONTROL.search(value):
        raise UnsafeCommandValue(f"control character in ESL value: {value!r:.60}")
    return value


def spool_path(directory: str, name: str) -> str:
    """``directory/name``, refusing names that would leave the directory."""
    check_value(name)
    root = os.path.realpath(directory)
    path = os.path.realpath(os.path.join(root, name))
    # The path becomes one word of a uuid_broadcast argument: no spaces, no {var} syntax.
    if os.path.dirname(path) != root or re.search(r"[\s{}'\",]", path):
        raise UnsafeCommandValue(f"prompt file name {name!r:.60} is not a plain file in the spool")
    return path


def new_uuid() -> str:
    return str(uuid_module.uuid4())


# -- commands --------------------------------------------------------------------------------

def command(line: str, headers: dict[str, str] | None = None) -> bytes:
    """One command block; every part is checked for control characters."""
    lines = [check_value(line)]
    for name, value in (headers or {}).items():
        lines.append(f"{check_token(name)}: {check_value(value)}")
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def api(name: str, *args: str) -> bytes:
    return command(" ".join(["api", check_token(name), *map(check_value, args)]))


def execute(app: str, arg: str, event_uuid: str) -> bytes:
    """sendmsg execute, correlated by ``event_uuid`` (it comes back as Application-UUID)."""
    headers = {"call-command": "execute", "execute-app-name": check_token(app),
               "event-uuid": check_uuid(event_uuid)}
    if arg:
        headers["execute-app-arg"] = arg
    return command("sendmsg", headers)


def unicast(local_ip: str, local_port: int, remote_ip: str, remote_port: int) -> bytes:
    """Fork the channel's audio to ``remote`` over UDP; FreeSWITCH binds ``local``.

    No ``flags: native``: FreeSWITCH then converts to L16 at the read codec's rate, which is
    what TOM expects whatever codec the call uses (G.711 would otherwise arrive as µ-law).
    """
    return command("sendmsg", {
        "call-command": "unicast", "local-ip": _ip(local_ip), "local-port": str(int(local_port)),
        "remote-ip": _ip(remote_ip), "remote-port": str(int(remote_port)), "transport": "udp"})


def hangup(cause: str = "NORMAL_CLEARING") -> bytes:
    return command("sendmsg", {"call-command": "hangup", "hangup-cause": check_token(cause)})


def _ip(value: str) -> str:
    if not re.match(r"^\d{1,3}(\.\d{1,3}){3}$", value):   # unicast is IPv4 only (AF_INET)
        raise UnsafeCommandValue(f"not an IPv4 address: {value!r:.60}")
    return value
