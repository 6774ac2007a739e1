"""The calls TOM is handling now and the last ones it finished (for ``tomctl calls``)."""

from __future__ import annotations

import collections
import dataclasses
import time


@dataclasses.dataclass
class CallRecord:
    id: str                      # FreeSWITCH's channel uuid
    caller_hash: str
    started_at: float            # wall clock, seconds
    state: str = "ringing"       # ringing, listening, thinking, speaking, ending, ended
    turns: int = 0
    outcome: str = ""
    hangup_cause: str = ""
    ended_at: float = 0.0
    peer_uuid: str = ""          # the other leg of a loopback call (a synthetic call)
    last_e2e_ms: float = 0.0     # the latest answer's end-to-end latency

    def as_dict(self, now: float | None = None) -> dict:
        end = self.ended_at or (now if now is not None else time.time())
        return {**dataclasses.asdict(self), "duration_s": round(end - self.started_at, 1)}


class CallRegistry:
    """Written only by the calls' own greenlets, each to its own record."""

    def __init__(self, keep_finished: int = 50) -> None:
        self._active: dict[str, CallRecord] = {}
        self._finished: collections.deque[CallRecord] = collections.deque(maxlen=keep_finished)

    def add(self, record: CallRecord) -> None:
        self._active[record.id] = record

    def finish(self, record: CallRecord, outcome: str) -> None:
        record.outcome, record.state, record.ended_at = outcome, "ended", time.time()
        self._active.pop(record.id, None)
        self._finished.appendleft(record)

    def find_by_peer(self, peer_uuid: str) -> CallRecord | None:
        return next((record for record in [*self._active.values(), *self._finished]
                     if record.peer_uuid == peer_uuid), None)

    def active(self) -> list[CallRecord]:
        return list(self._active.values())

    def finished(self) -> list[CallRecord]:
        return list(self._finished)
