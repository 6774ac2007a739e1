"""Order status from the shop's own system over HTTP, behind a timeout and a circuit breaker.

The contract: ``GET <TOM_ORDERS_URL>?order=<number>`` answers 200 with a JSON object that
has at least ``status`` (and may have ``eta`` and ``items``), or 404 for an unknown order.
A timeout, a refused connection, a 5xx or a body that is not such JSON is a failure; after
``FAILURES_TO_OPEN`` failures in a row the breaker opens and lookups fail at once for
``OPEN_FOR_S``, so a shop system that is down costs callers no waiting; then one lookup is
let through to try again. Blocking: run it in a worker thread, never on the hub.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable

from tomctl.errors import TomError

FAILURES_TO_OPEN = 3
OPEN_FOR_S = 30.0
MAX_BODY_BYTES = 64 * 1024
_ORDER_NUMBER = re.compile(r"^\d{4,12}$")


class ToolFailed(TomError):
    """A tool could not answer (down, slow, nonsense); TOM offers a colleague instead."""

    retryable = True


class CircuitBreaker:
    """Closed → open after ``threshold`` failures in a row → half-open after ``open_for_s``
    (one trial) → closed on a success (pure: the caller passes the time)."""

    def __init__(self, threshold: int = FAILURES_TO_OPEN, open_for_s: float = OPEN_FOR_S) -> None:
        self._threshold = threshold
        self._open_for_s = open_for_s
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> str:
        return "closed" if self._opened_at is None else "open"

    def allow(self, now: float) -> bool:
        if self._opened_at is None:
            return True
        if now - self._opened_at >= self._open_for_s and not self._trial:
            self._trial = True           # half-open: this one lookup tries again
            return True
        return False

    def record(self, success: bool, now: float) -> None:
        self._trial = False
        if success:
            self._failures, self._opened_at = 0, None
            return
        self._failures += 1
        if self._failures >= self._threshold or self._opened_at is not None:
            self._opened_at = now


class OrderStatus:
    def __init__(self, url: str, timeout_s: float, breaker: CircuitBreaker | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._breaker = breaker or CircuitBreaker()
        self._clock = clock

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    def lookup(self, order_number: str) -> dict | None:
        """The order's status record, None for an unknown order; ToolFailed otherwise."""
        if not _ORDER_NUMBER.match(order_number or ""):
            raise ValueError(f"not an order number: {order_number!r:.20}")
        if not self._breaker.allow(self._clock()):
            raise ToolFailed("the order system failed recently; not asked again yet")
        try:
            record = self._fetch(order_number)
        except ToolFailed:
            self._breaker.record(False, self._clock())
            raise
        self._breaker.record(True, self._clock())
        return record

    def _fetch(self, order_number: str) -> dict | None:
        separator = "&" if urllib.parse.urlsplit(self._url).query else "?"
        url = f"{self._url}{separator}{urllib.parse.urlencode({'order': order_number})}"
        try:
            with urllib.request.urlopen(url, timeout=self._timeout_s) as response:
                body = response.read(MAX_BODY_BYTES + 1)
        except urllib.error.HTTPError as exc:
            exc.close()          # it holds the connection open until it is collected
            if exc.code == 404:
                return None
            raise ToolFailed(f"the order system answered {exc.code}") from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise ToolFailed(f"the order system did not answer: {exc}") from None
        if len(body) > MAX_BODY_BYTES:
            raise ToolFailed("the order system's answer is too long")
        try:
            record = json.loads(body)
        except ValueError:
            raise ToolFailed("the order system's answer is not JSON") from None
        if not isinstance(record, dict) or not isinstance(record.get("status"), str):
            raise ToolFailed("the order system's answer has no status")
        return record
