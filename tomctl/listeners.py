"""The TCP ports ``tomctl serve`` listens on, bound before anything slow happens.

Loading the models takes many seconds; a port another process holds would only be found
after that, as a traceback. So every port is bound first, and a port in use stops the
start with one line that names its setting. The bound sockets are handed to the servers,
so no other process can take a port between the check and its use.
"""

from __future__ import annotations

import dataclasses
import errno
import socket

from gevent import socket as gsocket

from tomctl.config import Settings
from tomctl.errors import ConfigError

BACKLOG = 128


@dataclasses.dataclass
class Listeners:
    esl: gsocket.socket
    gateway: gsocket.socket
    admin: gsocket.socket

    def close(self) -> None:
        for sock in (self.esl, self.gateway, self.admin):
            sock.close()


def bind_all(settings: Settings) -> Listeners:
    wanted = {"esl": ("TOM_ESL_LISTEN_HOST", settings.telephony.listen_host,
                      "TOM_ESL_LISTEN_PORT", settings.telephony.listen_port),
              "gateway": ("TOM_GATEWAY_HOST", settings.gateway.host,
                          "TOM_GATEWAY_PORT", settings.gateway.port),
              "admin": ("TOM_ADMIN_HOST", settings.admin.host,
                        "TOM_ADMIN_PORT", settings.admin.port)}
    bound: dict[str, gsocket.socket] = {}
    try:
        for name, (host_setting, host, port_setting, port) in wanted.items():
            bound[name] = bind(host, port, host_setting, port_setting)
    except ConfigError:
        for sock in bound.values():
            sock.close()
        raise
    return Listeners(**bound)


def bind(host: str, port: int, host_setting: str, port_setting: str) -> gsocket.socket:
    try:
        family, _, _, _, address = gsocket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                      flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"{host_setting}={host!r} is not an address here: "
                          f"{exc.strerror}") from None
    sock = gsocket.socket(family, socket.SOCK_STREAM)
    # As gevent's servers do: a restart must not wait for the old connections' TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is in use by another process: set "
                              f"{port_setting} to a free port, or stop that process") from None
        raise ConfigError(f"cannot listen on {host}:{port} ({host_setting}, {port_setting}): "
                          f"{exc.strerror or exc}") from None
    return sock
