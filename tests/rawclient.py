"""Raw-socket helpers for the fake's self-tests: a TOM-side listener, a frame reader, and
the captures as frames. Deliberately minimal and independent of tomctl's parser."""

from __future__ import annotations

import pathlib
import re
from dataclasses import dataclass

import gevent
from gevent import socket

DATA = pathlib.Path(__file__).resolve().parent / "data" / "freeswitch"
_ENTRY = re.compile(rb"### \[t=\+([0-9.]+)s\] (SEND|RECV) (\d+) bytes([^\n]*)\n")


@dataclass
class Frame:
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes

    def get(self, name: str, default: str | None = None) -> str | None:
        return next((v for k, v in self.headers if k == name), default)

    @property
    def content_type(self) -> str | None:
        return self.get("Content-Type")

    def event(self) -> "Frame":
        """The event inside a text/event-plain frame (its headers are still URL-encoded)."""
        frames = parse_frames(self.body)
        assert len(frames) == 1, frames
        return frames[0]

    def names(self) -> list[str]:
        return [k for k, _ in self.headers]


def _parse_headers(block: bytes) -> list[tuple[str, str]]:
    headers = []
    for line in block.decode("utf-8").split("\n"):
        name, _, value = line.partition(": ")
        headers.append((name, value))
    return headers


def parse_frames(stream: bytes) -> list[Frame]:
    """Split what FreeSWITCH wrote into frames: a header block, then Content-Length bytes."""
    frames = []
    while stream:
        end = stream.find(b"\n\n")
        if end < 0:
            raise ValueError("truncated frame: %r" % stream[:80])
        headers = _parse_headers(stream[:end])
        length = int(dict(headers).get("Content-Length", "0"))
        body = stream[end + 2:end + 2 + length]
        if len(body) < length:
            raise ValueError("truncated body")
        frames.append(Frame(headers, body, stream[:end + 2 + length]))
        stream = stream[end + 2 + length:]
    return frames


def capture_chunks(name: str, direction: str = "RECV", connection: str = "ob") -> list[bytes]:
    """The recv() (or send()) calls of one connection of a capture, in order."""
    raw = (DATA / name).read_bytes()
    chunks, position = [], 0
    while (match := _ENTRY.search(raw, position)) is not None:
        start, length = match.end(), int(match.group(3))
        tag = match.group(4).decode().strip() or connection
        if match.group(2).decode() == direction and tag == connection:
            chunks.append(raw[start:start + length])
        position = start + length
    return chunks


def capture_frames(name: str, connection: str = "ob") -> list[Frame]:
    return parse_frames(b"".join(capture_chunks(name, "RECV", connection)))


class Conn:
    """One TCP connection read frame by frame, every read with a deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.chunks: list[bytes] = []   # every recv() as it came (segmentation)
        self.eof = False

    def send(self, text: str | bytes) -> None:
        self.sock.sendall(text.encode() if isinstance(text, str) else text)

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
            raise EOFError("closed by the switch")
        self.chunks.append(data)
        self.buffer += data

    def frame(self, timeout_s: float = 2.0) -> Frame:
        with gevent.Timeout(timeout_s):
            while True:
                end = self.buffer.find(b"\n\n")
                if end >= 0:
                    headers = _parse_headers(self.buffer[:end])
                    length = int(dict(headers).get("Content-Length", "0"))
                    if len(self.buffer) >= end + 2 + length:
                        frame = parse_frames(self.buffer[:end + 2 + length])[0]
                        self.buffer = self.buffer[end + 2 + length:]
                        return frame
                self._fill()

    def until(self, predicate, timeout_s: float = 3.0) -> list[Frame]:
        """Frames up to and including the first one ``predicate`` accepts."""
        frames = []
        with gevent.Timeout(timeout_s):
            while True:
                frames.append(self.frame(timeout_s))
                if predicate(frames[-1]):
                    return frames

    def event_until(self, name: str, timeout_s: float = 3.0, **values: str) -> list[Frame]:
        def wanted(frame: Frame) -> bool:
            if frame.content_type != "text/event-plain":
                return False
            event = frame.event()
            return event.get("Event-Name") == name and all(
                event.get(k.replace("_", "-")) == v for k, v in values.items())
        return self.until(wanted, timeout_s)

    def closed_within(self, timeout_s: float) -> bool:
        try:
            with gevent.Timeout(timeout_s):
                while True:
                    self._fill()
        except EOFError:
            return True
        except gevent.Timeout:
            return False

    def quiet_for(self, seconds: float) -> bool:
        """True when nothing at all arrives for ``seconds`` (an absence check)."""
        try:
            with gevent.Timeout(seconds):
                self._fill()
        except gevent.Timeout:
            return True
        return False

    def close(self) -> None:
        self.sock.close()


class Tom:
    """Stands in for TOM's outbound-socket server: a plain listening socket."""

    def __init__(self) -> None:
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.address = self.server.getsockname()
        self.conns: list[Conn] = []

    def accept(self, timeout_s: float = 2.0) -> Conn:
        with gevent.Timeout(timeout_s):
            sock, _ = self.server.accept()
        conn = Conn(sock)
        self.conns.append(conn)
        return conn

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        self.server.close()


def connect_inbound(port: int) -> Conn:
    sock = socket.create_connection(("127.0.0.1", port), timeout=2)
    sock.settimeout(None)
    return Conn(sock)
