"""Many callers at once: `tomctl serve` in its own process, with the bundled models, called by
the fake FreeSWITCH (testkit/fakes) over real TCP and UDP sockets.

    python bench/calls.py --calls N [--together] [--questions 3] --json

Arrival patterns:
  staggered (default)  call starts spread over the first 3 s; each caller asks its
                       questions one after another, each once TOM's previous answer has
                       ended; every other caller asks its first question into the greeting
                       (a barge-in)
  --together           every caller asks at the same moment, each round once every call
                       is quiet

Every time is taken where the caller is: the fake switch sends caller frame k at the end of
its 20 ms span and stamps TOM's datagrams on arrival. Prints one JSON object:

  answered                        questions answered / asked
  e2e                             caller's last audible sample to the first frame received
                                  after it (p50/p95 ms; the holding phrase counts as audio)
  barge_in                        caller's first audible sample to the end of the last
                                  frame of TOM's voice received
  waits_over_max_answer_wait      turns whose first audio came later than
                                  TOM_MAX_ANSWER_WAIT_S (the holding phrase should prevent it)
  holding_phrases                 times TOM said its holding phrase
  hub_max_block                   TOM's event loop lag, the worst 50 ms timer (ms)
  cpu_percent_per_listening_call  TOM's CPU per connected call whose caller is silent
  rss_mb                          TOM's peak resident memory
  slowest_turn                    the turn with the largest e2e
  tom_stages                      TOM's own per-stage timings of the answered turns
  cpu_percent_during_calls        CPU used while the calls talked: TOM, and this process
                                  (the fake switch and its callers), in % of one core
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import sys
import tempfile
import time
import types
import urllib.request
from pathlib import Path

import gevent
import gevent.event
import gevent.subprocess

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testkit.fakes import FakeSwitch  # noqa: E402
from testkit.serve import start_serve  # noqa: E402
from testkit.measure import (StealMeter, audible_span, cpu_seconds, pcm, percentiles,  # noqa: E402
                             rss_mb)
from testkit.speech import espeak_say, noise_burst, piper_say  # noqa: E402
from tomctl.speech import assets  # noqa: E402
from tomctl.speech.piper import PiperTextToSpeech  # noqa: E402

RATE = 8000
FRAME_S = 0.02
QUESTIONS = ["Do you have brake pads for a Volkswagen Golf?",
             "What time do you open on Saturday?",
             "Can I order spark plugs for delivery tomorrow?",
             "How much is an oil filter for a Ford Focus?",
             "Do you sell winter tyres?",
             "I need a new battery for my car."]
QUIET_S = 1.2            # TOM's answer has ended when nothing arrived for this long
ANSWER_TIMEOUT_S = 20.0
LISTEN_WINDOW_S = 10.0
LINE_NOISE_RMS = 0.001   # -60 dBFS
MAX_ANSWER_WAIT_S = 2.0
TARGET_E2E_P95_MS = 1500


def start_tom(calls: int, state: str, log_path: str) -> tuple[gevent.subprocess.Popen, dict]:
    environ = {**os.environ,
               "TOM_LOG_LEVEL": "debug" if log_path else "info",
               "TOM_ESL_LISTEN_PORT": "0", "TOM_GATEWAY_PORT": "0", "TOM_ADMIN_PORT": "0",
               "TOM_DEV_ALLOW_NO_JWT": "true", "TOM_SILENCE_TIMEOUT_S": "120",
               "TOM_MAX_CALLS": str(max(calls, 1)), "TOM_FS_PASSWORD": "",
               "TOM_MAX_ANSWER_WAIT_S": str(MAX_ANSWER_WAIT_S),
               "TOM_DB_PATH": os.path.join(state, "calls.db"),
               "TOM_SPOOL_DIR": os.path.join(state, "spool")}
    process, ready = start_serve(environ, timeout_s=300)
    gevent.spawn(_drain, process, log_path)
    return process, ready


def _drain(process, log_path: str) -> None:
    """Keep TOM's log pipe from filling up; keep the log if asked to."""
    sink = open(log_path, "wb") if log_path else None
    try:
        for line in process.stdout:
            if sink is not None:
                sink.write(line)
    finally:
        if sink is not None:
            sink.close()


def admin_get(port: int, path: str) -> str:
    def fetch() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
            return reply.read().decode()
    return gevent.get_hub().threadpool.apply(fetch)


def holding_phrases(port: int) -> float:
    match = re.search(r"^tom_pipeline_holding_phrases_total (\S+)$",
                      admin_get(port, "/metrics"), re.M)
    return float(match.group(1)) if match else 0.0


def tom_stage_timings(db_path: str) -> dict:
    """Where the time went, as TOM recorded it per answered turn (its call store)."""
    with sqlite3.connect(db_path) as db:
        rows = db.execute("select stt_ms, llm_first_token_ms, tts_first_audio_ms, e2e_ms "
                          "from turns where outcome = 'answered'").fetchall()
    names = ("stt", "llm_first_token", "tts_first_audio", "e2e")
    return {name: percentiles([row[i] for row in rows if row[i] is not None])
            for i, name in enumerate(names)}


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def last_heard_at(call) -> float:
    return call.heard[-1][0] if call.heard else 0.0


def wait_quiet(call, timeout_s: float = 60.0) -> None:
    """Until TOM has said something and then nothing for QUIET_S."""
    call.wait_heard(1, timeout_s=timeout_s)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() - last_heard_at(call) < QUIET_S:
        if time.monotonic() > deadline:
            raise TimeoutError("TOM did not stop talking")
        gevent.sleep(0.05)


class Caller:
    def __init__(self, number: int, switch: FakeSwitch, questions: list, report: dict) -> None:
        self.number = number
        self.switch = switch
        self.questions = questions
        self.report = report
        self.call = None

    def dial(self) -> None:
        self.call = self.switch.place_call(b"")
        self.call.wait_answered(timeout_s=30)

    def ask(self, turn: int, audio) -> None:
        """Say the question now; record when TOM's first audio after it arrived."""
        call = self.call
        offset = call.say(pcm(audio))
        first, last = audible_span(audio, RATE)
        onset_at = call.answered_at + offset + first
        end_at = call.answered_at + offset + last
        self.report["asked"] += 1
        try:
            call.wait_for(lambda: last_heard_at(call) > end_at, ANSWER_TIMEOUT_S, "answer")
        except TimeoutError:
            self.report["unanswered"].append({"call": self.number, "turn": turn})
            return
        e2e_ms = (min(t for t, _ in call.heard if t > end_at) - end_at) * 1000
        self.report["e2e"].append(e2e_ms)
        self.report["turns"].append({"call": self.number, "turn": turn,
                                     "e2e_ms": round(e2e_ms, 1)})
        return onset_at

    def barge_into_greeting(self, audio) -> None:
        """Ask the first question 1 s into the greeting; TOM should stop at once."""
        call = self.call
        call.wait_heard(1, timeout_s=30)
        gevent.sleep(max(0.0, call.heard[0][0] + 1.0 - time.monotonic()))
        onset_at = self.ask(0, audio)
        if onset_at is not None:
            before = [t for t, _ in call.heard if t <= onset_at + 0.8]
            self.report["barge_in"].append((before[-1] + FRAME_S - onset_at) * 1000)

    def staggered(self, start_at: float) -> None:
        gevent.sleep(max(0.0, start_at - time.monotonic()))
        self.dial()
        turns = range(len(self.questions))
        if self.number % 2:
            self.barge_into_greeting(self.questions[0])
            turns = turns[1:]
        for turn in turns:
            wait_quiet(self.call)
            self.ask(turn, self.questions[turn])
        wait_quiet(self.call)

    def hang_up(self) -> None:
        self.call.hangup()
        self.call.wait_ended(timeout_s=15)


def listening_cost(switch: FakeSwitch, pid: int, calls: int) -> float:
    """TOM's CPU per connected call whose caller says nothing, over the idle baseline."""
    started = time.monotonic()
    idle_before = cpu_seconds(pid)
    gevent.sleep(LISTEN_WINDOW_S)
    idle = (cpu_seconds(pid) - idle_before) / (time.monotonic() - started)
    # A silent caller on a real line still sends its line's noise, never digital zeros.
    hiss = pcm(noise_burst(LISTEN_WINDOW_S + 30, RATE, level=LINE_NOISE_RMS))
    callers = [switch.place_call(hiss) for _ in range(calls)]
    for call in callers:
        call.wait_answered(timeout_s=30)
    for call in callers:
        wait_quiet(call)
    started = time.monotonic()
    busy_before = cpu_seconds(pid)
    gevent.sleep(LISTEN_WINDOW_S)
    busy = (cpu_seconds(pid) - busy_before) / (time.monotonic() - started)
    for call in callers:
        call.hangup()
    for call in callers:
        call.wait_ended(timeout_s=15)
    return round(max(0.0, busy - idle) / calls * 100, 2)


def run(calls: int, together: bool, questions: int, log_path: str = "") -> dict:
    tts = PiperTextToSpeech(assets.tts_voice_file(""), False, [1])
    tts.load()
    speaker = types.SimpleNamespace(tts=tts)
    voices = [lambda text: piper_say(speaker, text, RATE),
              lambda text: espeak_say(text, RATE, "en-us"),
              lambda text: espeak_say(text, RATE, "en-gb")]
    state = tempfile.mkdtemp(prefix="tom-bench-")
    process, ready = start_tom(calls, state, log_path)
    switch = FakeSwitch(tom_address=("127.0.0.1", ready["esl_port"]))
    switch.start()
    report: dict = {"asked": 0, "e2e": [], "barge_in": [], "turns": [], "unanswered": []}
    try:
        listening = listening_cost(switch, process.pid, calls)
        holding_before = holding_phrases(ready["admin_port"])
        callers = [Caller(n, switch, [voices[(n + q) % len(voices)](
            QUESTIONS[(n + q) % len(QUESTIONS)]) for q in range(questions)], report)
            for n in range(calls)]
        phase_started, bench_cpu, steal = time.monotonic(), _own_cpu_s(), StealMeter()
        tom_cpu = cpu_seconds(process.pid)
        if together:
            for caller in callers:
                caller.dial()
            for turn in range(questions):
                for caller in callers:
                    wait_quiet(caller.call)
                gevent.joinall([gevent.spawn(c.ask, turn, c.questions[turn]) for c in callers],
                               raise_error=True)
            for caller in callers:
                wait_quiet(caller.call)
        else:
            begin = time.monotonic()
            gevent.joinall([gevent.spawn(c.staggered, begin + 3.0 * n / max(1, calls))
                            for n, c in enumerate(callers)], raise_error=True)
        phase_s = time.monotonic() - phase_started
        load = {"tom": round((cpu_seconds(process.pid) - tom_cpu) / phase_s * 100, 1),
                "bench_and_fake_switch": round((_own_cpu_s() - bench_cpu) / phase_s * 100, 1),
                "steal_by_other_guests": steal.percent()}
        for caller in callers:
            caller.hang_up()
        status = json.loads(admin_get(ready["admin_port"], "/status"))
        held = holding_phrases(ready["admin_port"]) - holding_before
        peak_rss = rss_mb(process.pid, peak=True)
    finally:
        switch.stop()
        process.terminate()
        process.wait(timeout=30)
    e2e = percentiles(report["e2e"])
    stages = tom_stage_timings(os.path.join(state, "calls.db"))
    slowest = max(report["turns"], key=lambda t: t["e2e_ms"], default=None)
    result = {
        "calls": calls, "pattern": "together" if together else "staggered",
        "questions_per_call": questions,
        "answered": f"{len(report['e2e'])}/{report['asked']}",
        "all_answered": not report["unanswered"] and len(report["e2e"]) == report["asked"],
        "e2e": e2e, "barge_in": percentiles(report["barge_in"]),
        "waits_over_max_answer_wait": sum(1 for v in report["e2e"]
                                          if v > MAX_ANSWER_WAIT_S * 1000 + 100),
        "holding_phrases": int(held),
        "hub_max_block": {"max": status["event_loop_max_lag_ms"]},
        "cpu_percent_per_listening_call": listening,
        "rss_mb": peak_rss,
        "slowest_turn": slowest,
        "tom_stages": stages,
        "cpu_percent_during_calls": load,
        "unanswered": report["unanswered"],
        "budget": status["inference"],
        "cpu_count": os.cpu_count(),
        "target_e2e_p95_ms": TARGET_E2E_P95_MS,
    }
    result["meets_target"] = bool(result["all_answered"] and e2e["p95"] is not None
                                  and e2e["p95"] <= TARGET_E2E_P95_MS)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--together", action="store_true",
                        help="every caller asks at the same moment")
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--log", default="", metavar="FILE",
                        help="keep TOM's debug log (every inference job's wait and run)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    report = run(args.calls, args.together, args.questions, args.log)
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
