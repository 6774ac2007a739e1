"""Selfcheck probes, each green, yellow or red, run inside the service (``/selfcheck``).

The pipeline probe is real: Piper speaks a sentence, Whisper transcribes it, the LLM
starts an answer, each timed against a budget, so a selfcheck also proves the models
still work. The worst result is the service's colour; `tomctl selfcheck` exits 0, 1 or 2.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import shutil
import time
from typing import Any

from tomctl.audio.frames import pcm_to_float
from tomctl.errors import TomError
from tomctl.speech.offload import HubMailbox, StopFlag

GREEN, YELLOW, RED = "green", "yellow", "red"
RANK = {GREEN: 0, YELLOW: 1, RED: 2}
PROBE_SENTENCE = "What time do you open on Saturday?"
PROBE_BUDGET_S = {"tts": 1.0, "stt": 1.0, "llm": 1.5}   # per stage, generous for a CPU
PROBE_TIMEOUT_S = 15.0
DISK_RED_BYTES = 200 * 1024 ** 2
DISK_YELLOW_SHARE = 0.10
ERRORS_WINDOW_S = 15 * 60
ERRORS_YELLOW, ERRORS_RED = 1, 10


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str


def overall(checks: list[Check]) -> str:
    return max((check.status for check in checks), key=RANK.__getitem__, default=GREEN)


class Selfcheck:
    def __init__(self, service: Any) -> None:
        self._service = service
        self._error_totals: collections.deque[tuple[float, float]] = collections.deque()
        self.last: dict | None = None

    def run(self) -> dict:
        checks = [self._link(), self._models(), self._pipeline(), self._database(),
                  self._disk(), self._errors()]
        self.last = {"status": overall(checks), "at": time.time(),
                     "checks": [dataclasses.asdict(check) for check in checks]}
        return self.last

    def _link(self) -> Check:
        link = self._service.link
        if link.state == "up":
            return Check("freeswitch_esl", GREEN, "connected and authenticated")
        if link.state == "disabled":
            return Check("freeswitch_esl", YELLOW, "TOM_FS_PASSWORD is not set")
        return Check("freeswitch_esl", RED, f"{link.state}: {link.last_error}")

    def _models(self) -> Check:
        models = self._service.engine.models
        if {"stt", "llm", "tts"} <= set(models):
            return Check("models", GREEN, ", ".join(f"{name} on {model.device}"
                                                    for name, model in models.items()))
        return Check("models", RED, f"loaded: {sorted(models)}")

    def _pipeline(self) -> Check:
        engine = self._service.engine
        timings: dict[str, float] = {}
        try:
            started = time.monotonic()
            audio = pcm_to_float(b"".join(engine.synthesize(PROBE_SENTENCE, 16000,
                                                              said_before=False)))
            timings["tts"] = time.monotonic() - started
            started = time.monotonic()
            heard = engine.transcribe(audio).text
            timings["stt"] = time.monotonic() - started
            timings["llm"] = self._first_sentence_s(engine, heard or PROBE_SENTENCE)
        except (TomError, TimeoutError) as exc:
            return Check("pipeline", RED, f"{type(exc).__name__}: {exc}")
        detail = ", ".join(f"{stage} {seconds * 1000:.0f} ms" for stage, seconds in
                           timings.items())
        if not _heard_enough(heard):
            return Check("pipeline", RED, f"STT heard {heard!r}; {detail}")
        slow = [stage for stage, seconds in timings.items() if seconds > PROBE_BUDGET_S[stage]]
        return Check("pipeline", YELLOW if slow else GREEN,
                     detail + (f"; over budget: {', '.join(slow)}" if slow else ""))

    @staticmethod
    def _first_sentence_s(engine: Any, text: str) -> float:
        stop, mailbox = StopFlag(), HubMailbox()
        started = time.monotonic()
        engine.start_reply(engine.messages([], text), stop,
                           lambda kind, value: mailbox.post((kind, value)))
        try:
            while True:
                kind, value = mailbox.get(timeout_s=PROBE_TIMEOUT_S)
                if kind == "error":
                    raise value
                if kind in ("sentence", "done"):
                    return time.monotonic() - started
        finally:
            stop.set()

    def _database(self) -> Check:
        problem = self._service.store.check_writable()
        if problem:
            return Check("database", RED, f"not writable: {problem}")
        return Check("database", GREEN, f"writable: {self._service.store.path}")

    def _disk(self) -> Check:
        worst = Check("disk", GREEN, "")
        details = []
        for label, path in (("spool", self._service.spool.directory),
                            ("database", self._service.store.directory)):
            usage = shutil.disk_usage(path)
            share = usage.free / usage.total
            details.append(f"{label} {usage.free // 1024 ** 2} MiB free ({share:.0%})")
            status = RED if usage.free < DISK_RED_BYTES else \
                YELLOW if share < DISK_YELLOW_SHARE else GREEN
            if RANK[status] > RANK[worst.status]:
                worst = Check("disk", status, "")
        return Check("disk", worst.status, ", ".join(details))

    def _errors(self) -> Check:
        now = time.time()
        total = sum(sample.value for family in self._service.engine.metrics.errors.collect()
                    for sample in family.samples if sample.name.endswith("_total"))
        self._error_totals.append((now, total))
        while self._error_totals[0][0] < now - ERRORS_WINDOW_S:
            self._error_totals.popleft()
        recent = total - self._error_totals[0][1]
        status = RED if recent >= ERRORS_RED else YELLOW if recent >= ERRORS_YELLOW else GREEN
        return Check("errors", status, f"{recent:.0f} errors since the oldest selfcheck in "
                                       f"the last 15 minutes")


def _heard_enough(heard: str) -> bool:
    """Whisper got at least half the probe's words (it may spell one or two differently)."""
    said = set(re.findall(r"[a-z']+", PROBE_SENTENCE.lower()))
    return len(said & set(re.findall(r"[a-z']+", heard.lower()))) * 2 >= len(said)
