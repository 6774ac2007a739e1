"""The unicast UDP audio path of one call (verified on a real FreeSWITCH, CAPTURES.md 6.1).

FreeSWITCH binds ``local-port`` and sends the caller's audio from it to TOM's port: one
datagram of s16le L16 per 20 ms frame (320 bytes at 8 kHz), now and then an all-0xFF
comfort-noise frame (samples of -1: silence). Whatever arrives on ``local-port`` it plays to
the caller at once, unpaced, so TOM's answer goes back to that port from a
:class:`~tomctl.audio.sink.PacedSink`.

Each call owns a pair of ports from the configured range (FreeSWITCH's, TOM's); a pair is
handed out again only after the call that held it has ended.
"""

from __future__ import annotations

import logging
from typing import Callable

import gevent
import gevent.socket

from tomctl.audio.frames import FRAME_MS
from tomctl.logs import event

log = logging.getLogger(__name__)

MAX_DATAGRAM_BYTES = 8192   # FreeSWITCH's receive buffer (SWITCH_RECOMMENDED_BUFFER_SIZE)
MAX_BURST_DATAGRAMS = 64    # read at once from an idle call's socket (a burst holds about 5)


class PortsExhausted(Exception):
    pass


class PortPool:
    """Pairs (FreeSWITCH local-port, TOM port) from [first, last]; a pair is reused only
    after release(), and pairs are handed out round-robin so a port rests between calls."""

    def __init__(self, first: int, last: int) -> None:
        self._pairs = [(port, port + 1) for port in range(first, last, 2)]
        self._next = 0
        self._taken: set[tuple[int, int]] = set()

    def take(self) -> tuple[int, int]:
        for _ in range(len(self._pairs)):
            pair = self._pairs[self._next]
            self._next = (self._next + 1) % len(self._pairs)
            if pair not in self._taken:
                self._taken.add(pair)
                return pair
        raise PortsExhausted(f"all {len(self._pairs)} media port pairs are in use")

    def release(self, pair: tuple[int, int]) -> None:
        self._taken.discard(pair)

    @property
    def in_use(self) -> int:
        return len(self._taken)


class UnicastMedia:
    """TOM's UDP socket for one call: caller frames in (to ``on_frame``), answer frames out.
    ``patience()`` says how long the caller's frames may wait before they are read: 0 while
    anything is going on, longer while the call only listens to a quiet line."""

    def __init__(self, tom_host: str, tom_port: int, fs_host: str, fs_port: int, rate: int,
                 on_frame: Callable[[bytes], None],
                 patience: Callable[[], float] = lambda: 0.0) -> None:
        self.tom_address = (tom_host, tom_port)
        self.fs_address = (fs_host, fs_port)
        self._frame_bytes = rate * FRAME_MS // 1000 * 2
        self._on_frame = on_frame
        self._patience = patience      # how long frames may wait in the socket, now
        self._sock: gevent.socket.socket | None = None
        self._greenlet: gevent.Greenlet | None = None
        self._partial = b""
        self.frames_in = 0
        self.dropped_datagrams = 0

    def start(self) -> None:
        """Bind TOM's port (OSError if it is taken) and start receiving."""
        sock = gevent.socket.socket(gevent.socket.AF_INET, gevent.socket.SOCK_DGRAM)
        try:
            sock.bind(self.tom_address)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._greenlet = gevent.spawn(self._receive)

    def send(self, frame: bytes) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendto(frame, self.fs_address)
        except OSError as exc:   # FreeSWITCH gone: the call's ESL side will notice
            event(log, "media_send_failed", level=logging.DEBUG, error=str(exc))

    def close(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=1)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _receive(self) -> None:
        assert self._sock is not None
        while True:
            wait_s = self._patience()
            if wait_s <= 0:
                self._accept(*self._sock.recvfrom(MAX_DATAGRAM_BYTES))
                continue
            # The frames meanwhile queue in the socket (its kernel buffer holds seconds of
            # them) and are read in one burst, in order: one wake-up instead of several.
            gevent.sleep(wait_s)
            self._sock.settimeout(0.0)
            try:
                # A flood on the port must not keep the hub reading: the rest waits for the
                # next burst (or the kernel drops it), never more than a burst's worth.
                for _ in range(MAX_BURST_DATAGRAMS):
                    self._accept(*self._sock.recvfrom(MAX_DATAGRAM_BYTES))
            except BlockingIOError:
                pass
            finally:
                self._sock.settimeout(None)

    def _accept(self, data: bytes, source: tuple) -> None:
        # Only FreeSWITCH's end of this call may speak: anything else on the port is
        # ignored (a stray or spoofed packet must not become the caller's voice).
        if source != self.fs_address or len(data) % 2:
            self.dropped_datagrams += 1
            return
        self._take(data)

    def _take(self, data: bytes) -> None:
        """Hand on whole 20 ms frames, whatever size the datagrams were."""
        if len(data) == self._frame_bytes and not self._partial:
            self.frames_in += 1
            self._on_frame(data)
            return
        buffer = self._partial + data
        size = self._frame_bytes
        whole = len(buffer) - len(buffer) % size
        for start in range(0, whole, size):
            self.frames_in += 1
            self._on_frame(buffer[start:start + size])
        self._partial = buffer[whole:]
