"""Speech-engine benchmark: one long conversation of generated speech through the real
models, in real time.

    python bench/engine.py --json [--turns 20] [--rate 8000] [--busy 0]

Each turn speaks a question (Piper and espeak-ng voices, as a phone line would: 20 ms
frames on a real-time schedule, the line never silent) and waits for TOM's answer. Before
every question after the first, TOM starts its (long) greeting and the question interrupts
it 0.4 s after its first frame left, so those turns also measure a barge-in; past
TOM_LLM_HISTORY_TURNS turns the history is trimmed and primed again. ``--busy N`` runs N
other processes beside TOM, each computing all the time (a neighbour on the machine:
FreeSWITCH, a backup), to show that no stage stalls when TOM does not have the cores to
itself. Prints p50/p95 in milliseconds:

  stt              Whisper time for the utterance
  llm_first_token  LLM request to first token
  tts_first_audio  first sentence to its audio
  e2e              caller's last audible sample to the first answer frame sent
  barge_in         caller starts speaking to TOM's audio stopping (the last frame sent)
  llm_max_step     the longest wait for the LLM's next event in any turn (max)
  hub_max_block    longest time the gevent hub could not run a ready greenlet (max)
  failed_turns     turns without a reply_done within 20 s; ``failed`` lists them, with the
                   question and what TOM made of it (its events, TOM's audio left out)
  slowest_turns    the three turns with the largest e2e, with TOM's own stage timings and
                   when the turn was judged over (end_of_turn_ms, after the caller's last
                   audible sample), after how many questions to the end-of-turn model and
                   its last answer, and TOM's events in the turn (ms after that sample)
  cpu_steal_percent  CPU time the hypervisor gave to other guests meanwhile (a VM's noise)
  busy_processes   the N of --busy
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import gevent

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testkit.harness import CallHarness  # noqa: E402
from testkit.measure import StealMeter, audible_span, percentiles  # noqa: E402
from testkit.speech import espeak_say, piper_say, silence  # noqa: E402
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
TARGETS_MS = {"e2e": 800, "barge_in": 120, "hub_max_block": 50, "llm_max_step": 3000}


class HubWatch:
    """Measures how late a 5 ms timer fires: the longest the hub was kept from running."""

    def __init__(self) -> None:
        self.max_block_s = 0.0

    def run(self) -> None:
        while True:
            before = time.monotonic()
            gevent.sleep(0.005)
            self.max_block_s = max(self.max_block_s, time.monotonic() - before - 0.005)


def _events(call: CallHarness, since: int, end_at: float | None = None) -> list:
    """TOM's events in a turn, its audio and text left out: each with the ms after the
    caller's last audible sample (``end_at``), or, before it is known, what it said."""
    return [(kind, round((at - end_at) * 1000) if end_at is not None else
             data.get("text") or data.get("reason") or data.get("outcome"))
            for (kind, data), at in zip(call.log[since:], call.log_at[since:])
            if kind not in ("reply_audio", "reply_text")]


def run(turns: int, rate: int, busy: int) -> dict:
    engine = Engine(config.load(), Metrics())
    engine.start()
    neighbours = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                  for _ in range(busy)]
    try:
        return _converse(engine, turns, rate) | {"busy_processes": busy}
    finally:
        for neighbour in neighbours:
            neighbour.kill()
            neighbour.wait()
        engine.close()


def _converse(engine: Engine, turns: int, rate: int) -> dict:
    voices = [lambda text: piper_say(engine, text, rate),
              lambda text: espeak_say(text, rate, "en-us"),
              lambda text: espeak_say(text, rate, "en-gb")]
    utterances = [voices[i % len(voices)](QUESTIONS[i % len(QUESTIONS)]) for i in range(turns)]
    watch = HubWatch()
    watcher = gevent.spawn(watch.run)
    steal = StealMeter()
    samples: dict[str, list[float]] = {k: [] for k in
                                       ("stt", "llm_first_token", "tts_first_audio", "e2e",
                                        "barge_in")}
    failed_turns: list[dict] = []
    per_turn: list[dict] = []
    with CallHarness(engine, rate) as call:
        for number, audio in enumerate(utterances):
            if number:
                # TOM says something long; the caller interrupts it 0.4 s into it (once the
                # last answer has played out and the greeting is heard) with the next question.
                call.conversation.say("greeting")
                greeting, deadline = call.conversation._reply, time.monotonic() + 20
                while not greeting.heard and time.monotonic() < deadline:
                    call.feed(silence(FRAME_S, rate))
                call.feed(silence(0.4, rate))
            seen = len(call.log)
            # The harness hands over each 20 ms frame when its span starts; a phone line
            # delivers it when it ends. Count every sample 20 ms earlier to charge that back.
            first, last = audible_span(audio, rate)
            fed_at = time.monotonic() - FRAME_S
            call.feed(audio)
            try:
                call.feed_until(silence(20, rate), "reply_done", 20, since=seen)
            except AssertionError:
                failed_turns.append({"turn": number,
                                     "question": QUESTIONS[number % len(QUESTIONS)],
                                     "events": _events(call, seen)})
                continue
            end_at = fed_at + last
            answer = [t for t, _ in call.heard if t > end_at]
            if answer:
                samples["e2e"].append((answer[0] - end_at) * 1000)
                done = call.log[max(i for i, (kind, _) in enumerate(call.log)
                                    if kind == "reply_done")][1]
                ends = [(at, data) for (kind, data), at in zip(call.log[seen:],
                                                                call.log_at[seen:])
                        if kind == "end_of_turn"]
                decided = {} if not ends else {
                    "end_of_turn_ms": round((ends[-1][0] - end_at) * 1000, 1),
                    "asks": ends[-1][1]["asks"], "probability": ends[-1][1]["probability"]}
                # TOM's own e2e (from the sample it took for the last audible one) is kept
                # apart from the caller's.
                per_turn.append({**{("tom_" + k if k == "e2e_ms" else k): round(v, 1)
                                    for k, v in done["latencies"].items()},
                                 "turn": number, "e2e_ms": round(samples["e2e"][-1], 1),
                                 **decided, "events": _events(call, seen, end_at)})
            barge_at = [at for (kind, _), at in zip(call.log[seen:], call.log_at[seen:])
                        if kind == "barge_in"]
            if barge_at:
                # TOM's audio ends with the last frame sent before the barge-in.
                last_sent = max(t for t, _ in call.heard if t <= barge_at[0])
                samples["barge_in"].append((last_sent + FRAME_S - fed_at - first) * 1000)
    llm_max_step = 0.0
    for kind, data in call.log:
        if kind == "reply_done":
            for name in ("stt", "llm_first_token", "tts_first_audio"):
                if f"{name}_ms" in data["latencies"]:
                    samples[name].append(data["latencies"][f"{name}_ms"])
            llm_max_step = max(llm_max_step, data["latencies"].get("llm_max_step_ms", 0.0))
    watcher.kill()
    report = {name: percentiles(values) for name, values in samples.items()}
    report["hub_max_block"] = {"max": round(watch.max_block_s * 1000, 1)}
    report["llm_max_step"] = {"max": round(llm_max_step, 1)}
    report["failed_turns"] = len(failed_turns)
    report["failed"] = failed_turns
    report["slowest_turns"] = sorted(per_turn, key=lambda t: -t["e2e_ms"])[:3]
    report["cpu_steal_percent"] = steal.percent()
    report["turns"] = turns
    report["rate"] = rate
    report["device"] = engine.models["stt"].device
    report["cpu_count"] = os.cpu_count()
    report["targets_ms"] = TARGETS_MS
    report["meets_targets"] = bool(
        report["e2e"]["p95"] is not None and report["e2e"]["p95"] <= TARGETS_MS["e2e"]
        and report["barge_in"]["p95"] is not None
        and report["barge_in"]["p95"] <= TARGETS_MS["barge_in"]
        and report["hub_max_block"]["max"] < TARGETS_MS["hub_max_block"]
        and report["llm_max_step"]["max"] <= TARGETS_MS["llm_max_step"]
        and not failed_turns)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--rate", type=int, default=8000, choices=(8000, 16000))
    parser.add_argument("--busy", type=int, default=0,
                        help="other processes computing beside TOM all the time")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    report = run(args.turns, args.rate, args.busy)
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
