"""Speech-engine benchmark: turns of generated speech through the real models, in real time.

    python bench/engine.py --json [--turns 20] [--rate 8000]

Each turn speaks a question (Piper and espeak-ng voices, as a phone line would: 20 ms
frames on a real-time schedule) and waits for TOM's answer. Before every question after the
first, TOM starts its (long) greeting and the question interrupts it 0.4 s in, so those
turns also measure a barge-in. Prints p50/p95 in milliseconds:

  stt              Whisper time for the utterance
  llm_first_token  LLM request to first token
  tts_first_audio  first sentence to its audio
  e2e              end of the caller's speech to the first answer frame sent
  barge_in         caller starts speaking to TOM's audio stopping (the last frame sent)
  hub_max_block    longest time the gevent hub could not run a ready greenlet
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import gevent
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.harness import CallHarness  # noqa: E402
from tests.speech import espeak_say, piper_say, silence  # noqa: E402
from tomctl import config  # noqa: E402
from tomctl.engine import Engine  # noqa: E402
from tomctl.metrics import Metrics  # noqa: E402

QUESTIONS = [
    "Do you have brake pads for a Volkswagen Golf?",
    "What time do you open on Saturday?",
    "How much is an oil filter?",
    "Can I pick up my order this afternoon?",
    "Do you sell winter tyres?",
    "Where is your shop?",
    "I need a new battery for my car.",
    "Can you check if my parts have arrived?",
    "Do you deliver to Berlin?",
    "What is your phone number for returns?",
]
FRAME_S = 0.02
TARGETS_MS = {"e2e": 800, "barge_in": 120, "hub_max_block": 50}


class HubWatch:
    """Measures how late a 5 ms timer fires: the longest the hub was kept from running."""

    def __init__(self) -> None:
        self.max_block_s = 0.0

    def run(self) -> None:
        while True:
            before = time.monotonic()
            gevent.sleep(0.005)
            self.max_block_s = max(self.max_block_s, time.monotonic() - before - 0.005)


def speech_onset(audio: np.ndarray, rate: int) -> float:
    """Seconds from the start of ``audio`` to its first audible sample (-40 dBFS)."""
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    return loud[0] / rate if len(loud) else 0.0


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "n": 0}
    return {"p50": round(float(np.percentile(values, 50)), 1),
            "p95": round(float(np.percentile(values, 95)), 1), "n": len(values)}


def run(turns: int, rate: int) -> dict:
    engine = Engine(config.load(), Metrics())
    engine.start()
    voices = [lambda text: piper_say(engine, text, rate),
              lambda text: espeak_say(text, rate, "en-us"),
              lambda text: espeak_say(text, rate, "en-gb")]
    utterances = [voices[i % len(voices)](QUESTIONS[i % len(QUESTIONS)]) for i in range(turns)]
    watch = HubWatch()
    watcher = gevent.spawn(watch.run)
    samples: dict[str, list[float]] = {k: [] for k in
                                       ("stt", "llm_first_token", "tts_first_audio", "e2e",
                                        "barge_in")}
    with CallHarness(engine, rate) as call:
        for number, audio in enumerate(utterances):
            if number:
                # TOM says something long; the caller interrupts it with the next question.
                call.conversation.say("greeting")
                call.feed(silence(0.4, rate))
            seen = len(call.log)
            # The harness hands over each 20 ms frame when its time starts; a phone line
            # delivers it when it ends. Count the onset 20 ms earlier to charge that back.
            onset_at = time.monotonic() - FRAME_S + speech_onset(audio, rate)
            call.feed(audio)
            call.feed_until(silence(20, rate), "reply_done", 20, since=seen)
            barge_at = [at for (kind, _), at in zip(call.log[seen:], call.log_at[seen:])
                        if kind == "barge_in"]
            if barge_at:
                # TOM's audio ends with the last frame sent before the barge-in.
                last_sent = max(t for t, _ in call.heard if t <= barge_at[0])
                samples["barge_in"].append((last_sent + FRAME_S - onset_at) * 1000)
    for kind, data in call.log:
        if kind == "reply_done":
            for name in ("stt", "llm_first_token", "tts_first_audio", "e2e"):
                if f"{name}_ms" in data["latencies"]:
                    samples[name].append(data["latencies"][f"{name}_ms"])
    watcher.kill()
    engine.close()
    report = {name: percentiles(values) for name, values in samples.items()}
    report["hub_max_block"] = {"max": round(watch.max_block_s * 1000, 1)}
    report["turns"] = turns
    report["rate"] = rate
    report["device"] = engine.models["stt"].device
    report["cpu_count"] = os.cpu_count()
    report["targets_ms"] = TARGETS_MS
    report["meets_targets"] = bool(
        report["e2e"]["p95"] is not None and report["e2e"]["p95"] <= TARGETS_MS["e2e"]
        and report["barge_in"]["p95"] is not None
        and report["barge_in"]["p95"] <= TARGETS_MS["barge_in"]
        and report["hub_max_block"]["max"] < TARGETS_MS["hub_max_block"])
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--rate", type=int, default=8000, choices=(8000, 16000))
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    report = run(args.turns, args.rate)
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
