"""Plain clients for the tests and benches: a WebSocket client (wsproto over a gevent
socket) and an HTTP GET."""

from __future__ import annotations

import json

import gevent
from gevent import socket
from wsproto import ConnectionType, WSConnection
from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, RejectConnection,
                            Request, TextMessage)


class Client:
    def __init__(self, address, origin: str | None = "same", path: str = "/ws") -> None:
        """``origin``: "same" sends the page's own origin, None sends none."""
        host, port = address
        self.sock = socket.create_connection((host, port), timeout=10)
        self.ws = WSConnection(ConnectionType.CLIENT)
        if origin == "same":
            origin = f"http://{host}:{port}"
        headers = [] if origin is None else [(b"Origin", origin.encode())]
        self.sock.sendall(self.ws.send(Request(host=f"{host}:{port}", target=path,
                                               extra_headers=headers)))
        self.status: int | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.events: list[dict] = []
        self.audio_bytes = 0
        self._pending: list = []
        first = self._next()
        if isinstance(first, AcceptConnection):
            self.status = 101
        elif isinstance(first, RejectConnection):
            self.status = first.status_code

    def _next(self):
        while not self._pending:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            self.ws.receive_data(data)
            self._pending.extend(self.ws.events())
        return self._pending.pop(0)

    def send_json(self, payload) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        self.sock.sendall(self.ws.send(TextMessage(text)))

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(self.ws.send(BytesMessage(data)))

    def receive(self, timeout_s: float = 10):
        """The next message: a dict (JSON event), bytes (audio) or None once closed."""
        with gevent.Timeout(timeout_s):
            while True:
                try:
                    item = self._next()
                except ConnectionError:
                    return None
                if isinstance(item, CloseConnection):
                    self.close_code, self.close_reason = item.code, item.reason
                    return None
                if isinstance(item, TextMessage):
                    self.events.append(json.loads(item.data))
                    return self.events[-1]
                if isinstance(item, BytesMessage):
                    self.audio_bytes += len(item.data)
                    return item.data

    def wait_event(self, kind: str, timeout_s: float = 20) -> dict:
        with gevent.Timeout(timeout_s, AssertionError(f"no {kind} event; saw "
                                                      f"{[e['type'] for e in self.events]}")):
            while True:
                message = self.receive(timeout_s)
                if message is None:
                    raise AssertionError(f"closed {self.close_code} {self.close_reason} "
                                         f"before {kind}")
                if isinstance(message, dict) and message["type"] == kind:
                    return message

    def wait_closed(self, timeout_s: float = 10) -> int | None:
        with gevent.Timeout(timeout_s, AssertionError("not closed")):
            while self.receive(timeout_s) is not None:
                pass
        return self.close_code

    def close(self) -> None:
        self.sock.close()


def http_get(address, path: str) -> str:
    """The whole HTTP response (head and body) to a GET."""
    sock = socket.create_connection(address)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    response = b""
    while chunk := sock.recv(65536):
        response += chunk
    sock.close()
    return response.decode()
