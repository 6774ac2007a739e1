"""The browser gateway's server: the test page over HTTP and the WebSocket at ``/ws``.

h11 parses each request head; a WebSocket upgrade is handed to wsproto with the same bytes,
after the Origin check and the connection limit (refused with an HTTP status before any
WebSocket exists). Everything else is the static page or a 404.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any

import gevent
import gevent.pool
import gevent.server
import h11
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, Request
from wsproto.utilities import RemoteProtocolError

from tomctl.config import GatewaySettings
from tomctl.gateway.auth import TokenVerifier
from tomctl.gateway.connection import BrowserConnection
from tomctl.logs import event

log = logging.getLogger(__name__)

HEAD_LIMIT_BYTES = 16384
HEAD_TIMEOUT_S = 10.0
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/audio-worklet.js": ("audio-worklet.js", "text/javascript; charset=utf-8")}
BAD_REQUEST = (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 12\r\nConnection: close\r\n\r\n"
               b"bad request\n")
SECURITY_HEADERS = [(b"X-Content-Type-Options", b"nosniff"), (b"Cache-Control", b"no-store"),
                    (b"Content-Security-Policy",
                     b"default-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'")]


class Gateway:
    def __init__(self, settings: GatewaySettings, engine: Any, recordings: Any = None,
                 tools: Any = None, learning: Any = None) -> None:
        self._settings = settings
        self._engine = engine
        self._tools = tools
        self._learning = learning
        self._recordings = recordings
        self._verifier = TokenVerifier(settings)
        self._origins = {o.strip().rstrip("/") for o in settings.origins.split(",") if o.strip()}
        self._server: gevent.server.StreamServer | None = None
        self.connections = 0

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None
        return self._server.address

    def start(self, sock=None) -> None:
        self._verifier.check_start()
        # Page requests and refusals need greenlets beyond the conversations themselves.
        pool = gevent.pool.Pool(self._settings.max_connections + 32)
        self._server = gevent.server.StreamServer(
            sock or (self._settings.host, self._settings.port), self._serve, spawn=pool)
        self._server.start()
        event(log, "gateway_listening", host=self._settings.host, port=self.address[1],
              token_required=self._verifier.required)

    def close(self) -> None:
        """Refuse new connections; those in progress go on (until stop)."""
        if self._server is not None:
            self._server.close()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Wait up to ``timeout_s`` for the connections in progress, then end them."""
        if self._server is not None:
            self._server.stop(timeout=timeout_s)

    def _serve(self, sock, address) -> None:
        try:
            with gevent.Timeout(HEAD_TIMEOUT_S, TimeoutError("request head")):
                head = _read_head(sock)
            http, request = _parse(head)
            if _is_upgrade(request) and request.target == b"/ws":
                self._upgrade(sock, head, request)
            else:
                _respond(sock, http, *self._page(request))
        except (TimeoutError, ValueError, h11.RemoteProtocolError) as exc:
            sock.sendall(BAD_REQUEST)
            event(log, "gateway_bad_request", level=logging.DEBUG, error=str(exc)[:100])
        except OSError:
            pass
        finally:
            sock.close()

    def _page(self, request: h11.Request) -> tuple[int, bytes, bytes]:
        target = request.target.decode("ascii", "replace").split("?")[0]
        if request.method != b"GET" or target not in STATIC:
            return 404, b"text/plain", b"not found\n"
        name, content_type = STATIC[target]
        body = resources.files("tomctl.gateway").joinpath("static", name).read_bytes()
        return 200, content_type.encode(), body

    def _upgrade(self, sock, head: bytes, request: h11.Request) -> None:
        metrics = self._engine.metrics
        headers = {name.lower(): value for name, value in request.headers}
        refusal = None
        if not self._origin_allowed(headers.get(b"origin", b""), headers.get(b"host", b"")):
            refusal = (403, "origin")
        elif self.connections >= self._settings.max_connections:
            refusal = (503, "too_many_connections")
        ws = _handshake(head)
        if refusal is not None:
            metrics.gateway_refusals.labels(reason=refusal[1]).inc()
            event(log, "browser_refused", reason=refusal[1])
            sock.sendall(ws.send(RejectConnection(status_code=refusal[0])))
            return
        sock.sendall(ws.send(AcceptConnection()))
        self.connections += 1
        metrics.gateway_connections.inc()
        try:
            BrowserConnection(sock, ws, self._settings, self._verifier, self._engine,
                              self._recordings, self._tools, self._learning).run()
        finally:
            self.connections -= 1
            metrics.gateway_connections.dec()

    def _origin_allowed(self, origin: bytes, host: bytes) -> bool:
        text = origin.decode("ascii", "replace").rstrip("/")
        if self._origins:
            return text in self._origins
        # Without a list, only the page's own origin (a browser always sends Origin).
        return bool(host) and text in (f"http://{host.decode('ascii', 'replace')}",
                                       f"https://{host.decode('ascii', 'replace')}")


def _read_head(sock) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ValueError("connection closed in the request head")
        data += chunk
        if len(data) > HEAD_LIMIT_BYTES:
            raise ValueError("request head too long")
    return data


def _parse(head: bytes) -> tuple[h11.Connection, h11.Request]:
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(head)
    request = connection.next_event()
    if not isinstance(request, h11.Request):
        raise ValueError("incomplete request")
    return connection, request


def _handshake(head: bytes) -> WSConnection:
    """wsproto's server side after a valid opening handshake, else ValueError (a 400)."""
    ws = WSConnection(ConnectionType.SERVER)
    try:
        ws.receive_data(head)
        if not any(isinstance(e, Request) for e in ws.events()):
            raise ValueError("not a WebSocket handshake")
    except RemoteProtocolError as exc:      # e.g. no Sec-WebSocket-Key
        raise ValueError(f"bad WebSocket handshake: {exc}") from None
    return ws


def _is_upgrade(request: h11.Request) -> bool:
    headers = {name.lower(): value.lower() for name, value in request.headers}
    return headers.get(b"upgrade") == b"websocket"


def _respond(sock, connection: h11.Connection, status: int, content_type: bytes,
             body: bytes) -> None:
    headers = [(b"Content-Type", content_type), (b"Content-Length", str(len(body)).encode()),
               (b"Connection", b"close"), *SECURITY_HEADERS]
    sock.sendall(connection.send(h11.Response(status_code=status, headers=headers)) +
                 connection.send(h11.Data(data=body)) + connection.send(h11.EndOfMessage()))
