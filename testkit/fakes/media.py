"""Audio: the caller's timeline, WAV durations, and FreeSWITCH's unicast UDP socket.

CAPTURES 6.1: FreeSWITCH binds local-ip:local-port, sends one 320-byte s16le datagram per
20 ms from it to remote-ip:remote-port (the caller's audio, live), and writes whatever
arrives on local-port to the caller at once, without pacing.
"""

from __future__ import annotations

import time
import wave
from typing import Callable

import gevent
from gevent import socket

FRAME_BYTES = 320                 # 20 ms of L16 mono at 8 kHz (CAPTURES 6.1)
SILENCE = b"\x00" * FRAME_BYTES   # what the caller sends after its audio (the brief)
CNG_FRAME = b"\xff" * FRAME_BYTES  # switch_ivr_park's CNG fill, seen once in s2 and s6


def split_file_prefix(path: str) -> tuple[dict[str, str], str]:
    """`{k=v,k2=v2}/path.wav` -> ({k: v, k2: v2}, "/path.wav") (ESL-FACTS 4.3)."""
    tags: dict[str, str] = {}
    while path.startswith("{") and "}" in path:
        inside, path = path[1:].split("}", 1)
        for item in inside.split(","):
            key, _, value = item.partition("=")
            if key:
                tags[key.strip()] = value
    return tags, path


def wav_info(path: str) -> tuple[int, int] | None:
    """(frames, rate) of a readable WAV file, else None. Reads only the header."""
    try:
        with wave.open(path, "rb") as handle:
            return handle.getnframes(), handle.getframerate()
    except (OSError, EOFError, wave.Error):
        return None


def read_wav_pcm(path: str) -> bytes:
    """The s16le mono 8 kHz samples of a WAV the synthetic caller plays."""
    with wave.open(path, "rb") as handle:
        if (handle.getnchannels(), handle.getsampwidth(), handle.getframerate()) != (1, 2, 8000):
            raise ValueError("caller WAV must be 8 kHz mono 16-bit")
        return handle.readframes(handle.getnframes())


class CallerAudio:
    """What the caller says: its PCM from answer on, then silence (zeros) forever."""

    def __init__(self, pcm: bytes) -> None:
        self.pcm = pcm

    def say(self, pcm: bytes, from_index: int) -> int:
        """Speak ``pcm`` from frame ``from_index`` on (or after what is still to be said);
        returns the frame index it starts at. A caller who answers what they hear."""
        start = max(from_index, -(-len(self.pcm) // FRAME_BYTES))
        self.pcm = self.pcm.ljust(start * FRAME_BYTES, b"\0") + pcm
        return start

    def frame(self, index: int) -> bytes:
        if index < 0:
            return SILENCE
        chunk = self.pcm[index * FRAME_BYTES:(index + 1) * FRAME_BYTES]
        return chunk + SILENCE[len(chunk):]


class Unicast:
    """One `call-command: unicast` connection of a channel."""

    def __init__(self, local: tuple[str, int], remote: tuple[str, int],
                 on_datagram: Callable[[float, bytes], None],
                 spawn: Callable[..., gevent.Greenlet] = gevent.spawn) -> None:
        self._spawn = spawn
        self.local = local
        self.remote = remote
        self._on_datagram = on_datagram
        self._sock: socket.socket | None = None
        self._receiver: gevent.Greenlet | None = None
        self.sent = 0
        self.sent_frames: list[tuple[float, bytes]] = []   # (time.monotonic(), the caller's frame)

    def open(self) -> bool:
        """Bind like switch_ivr_activate_unicast (AF_INET, SOCK_DGRAM, no SO_REUSEADDR so a
        port another call holds fails: ESL-FACTS 3.5 "Failure creating unicast connection")."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(self.local)
        except OSError:
            sock.close()
            return False
        self._sock = sock
        self._receiver = self._spawn(self._receive)
        return True

    def _receive(self) -> None:
        while self._sock is not None:
            try:
                data, _ = self._sock.recvfrom(8192)
            except OSError:
                return
            if not data:
                return
            self._on_datagram(time.monotonic(), data)

    def send(self, frame: bytes) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendto(frame, self.remote)
            self.sent += 1
            self.sent_frames.append((time.monotonic(), frame))
        except OSError:
            pass  # ESL-FACTS 3.5: a sendto failure deactivates unicast; the caller hears on

    def close(self) -> None:
        sock, self._sock = self._sock, None
        receiver, self._receiver = self._receiver, None
        if receiver is not None:
            receiver.kill(block=False)
        if sock is not None:
            sock.close()
