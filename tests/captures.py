"""Reads the raw ESL transcripts recorded from a real FreeSWITCH (tests/data/freeswitch/).

Each entry is ``### [t=+S s] SEND|RECV N bytes`` followed by exactly the N bytes of one
send()/recv() call, so the TCP segmentation FreeSWITCH produced is kept.
"""

from __future__ import annotations

import pathlib
import re

DATA = pathlib.Path(__file__).parent / "data" / "freeswitch"
# The follow-up probes tag each entry with its connection: " ob" (outbound) or " ib".
_ENTRY = re.compile(rb"### \[t=\+([0-9.]+)s\] (SEND|RECV) (\d+) bytes(?: (\w+))?\n")


def read_capture(name: str, connection: str = "ob") -> list[tuple[float, str, bytes]]:
    raw = (DATA / name).read_bytes()
    entries = []
    position = 0
    while (match := _ENTRY.search(raw, position)) is not None:
        start = match.end()
        length = int(match.group(3))
        tag = (match.group(4) or b"ob").decode()
        if tag == connection or match.group(4) is None:
            entries.append((float(match.group(1)), match.group(2).decode(),
                            raw[start:start + length]))
        position = start + length
    return entries


def received(name: str) -> list[bytes]:
    """The recv() chunks of a capture, in order."""
    return [data for _, direction, data in read_capture(name) if direction == "RECV"]
