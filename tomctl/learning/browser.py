"""Browser conversations as calls to learn from: each session gets a variant and a call
record of its own (caller "browser", outcome "browser"), and the page's thumbs up or down
is its rating (5 or 1)."""

from __future__ import annotations

import logging
import time
from typing import Any

from tomctl.learning.reward import Signals
from tomctl.logs import event
from tomctl.telephony import wire

log = logging.getLogger(__name__)


class BrowserLearning:
    def __init__(self, learner: Any, store: Any, metrics: Any) -> None:
        self._learner = learner
        self._store = store
        self._metrics = metrics

    def begin(self, session_id: str | None) -> "BrowserSession":
        """``session_id``: the record a recorded session already has, else one is made."""
        now = time.time()
        if session_id is None:
            session_id = wire.new_uuid()
            self._store.call_started(session_id, "browser", now)
            self._store.call_answered(session_id, now)
        variant, shares = self._learner.choose()
        self._store.call_variant(session_id, variant.id, shares)
        event(log, "variant_chosen", call=session_id, variant=variant.id,
              share=round(shares[variant.id], 3), source="browser")
        return BrowserSession(self._learner, self._store, self._metrics, session_id, variant)


class BrowserSession:
    def __init__(self, learner: Any, store: Any, metrics: Any, session_id: str,
                 variant: Any) -> None:
        self._learner, self._store, self._metrics = learner, store, metrics
        self.id = session_id
        self.variant = variant
        self._started = time.monotonic()
        self._rating: int | None = None
        self._counts = {"barge_ins": 0, "answers": 0, "fallback_turns": 0}
        self._turns = 0

    def on_event(self, kind: str, data: dict) -> None:
        if kind == "barge_in":
            self._counts["barge_ins"] += 1
        elif kind == "turn_ended":
            self._turns += 1
            if data["outcome"] in ("answered", "interrupted"):
                self._counts["answers"] += 1
            elif data["outcome"] == "fallback":
                self._counts["fallback_turns"] += 1

    def thumbs(self, up: bool) -> None:
        """The page's thumb, once per session (a later one changes nothing)."""
        if self._rating is not None:
            return
        self._rating = 5 if up else 1
        self._store.feedback(self.id, "thumbs", self._rating)
        self._metrics.feedback.labels(kind="thumbs").inc()
        event(log, "rating_answered", call=self.id, rating=self._rating, source="browser")

    def end(self, own_record: bool) -> None:
        if own_record:
            self._store.call_ended(self.id, time.time(), "browser", "", self._turns)
        self._learner.finished(self.id, self.variant.id, Signals(
            rating=self._rating, duration_s=time.monotonic() - self._started, **self._counts))
