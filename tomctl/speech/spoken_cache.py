"""The audio of sentences TOM has said, kept for the next caller who is told the same.

A shop's answers repeat from call to call: "Yes, we have that.", the hours of a weekday, the
address, the returns policy. Piper costs about 35 ms of one core per word, and the caller
waits for all of an answer's first sentence; a sentence said before costs nothing and takes
no CPU slot from another caller. The cache is bounded in bytes and drops the sentence used
least recently. It lives in memory only: nothing is written anywhere.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Hashable


class SpokenCache:
    """Frames by key (the text, and everything that changes its sound). Used from the hub's
    greenlets only, so it needs no lock."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._frames: OrderedDict[Hashable, tuple[bytes, ...]] = OrderedDict()

    def get(self, key: Hashable) -> list[bytes] | None:
        frames = self._frames.get(key)
        if frames is None:
            return None
        self._frames.move_to_end(key)
        return list(frames)

    def put(self, key: Hashable, frames: list[bytes]) -> None:
        size = sum(len(frame) for frame in frames)
        if not frames or size > self.max_bytes or key in self._frames:
            return
        self._frames[key] = tuple(frames)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, dropped = self._frames.popitem(last=False)
            self.bytes -= sum(len(frame) for frame in dropped)
