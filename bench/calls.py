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
  unanswered                      the questions no answer came to within 20 s (call, turn)
  turn_outcomes                   how TOM ended the callers' turns, by its own count
                                  (answered, dropped: Whisper heard nothing believable, ...)
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
from pathlib import Path

import gevent
import gevent.event
import gevent.subprocess

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testkit.callers import (QUESTIONS, RATE, Caller, admin_get, drain_log,  # noqa: E402
                             wait_quiet, voices as caller_voices)
from testkit.fakes import FakeSwitch  # noqa: E402
from testkit.serve import start_serve  # noqa: E402
from testkit.measure import StealMeter, cpu_seconds, pcm, percentiles, rss_mb  # noqa: E402
from testkit.speech import noise_burst  # noqa: E402

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
    gevent.spawn(drain_log, process, log_path)
    return process, ready


def holding_phrases(metrics: str) -> float:
    match = re.search(r"^tom_pipeline_holding_phrases_total (\S+)$", metrics, re.M)
    return float(match.group(1)) if match else 0.0


def turn_outcomes(metrics: str) -> dict[str, int]:
    """TOM's own count of how the callers' turns ended (answered, dropped, withdrawn, ...):
    what became of a question no answer came to."""
    return {outcome: int(float(count)) for outcome, count in re.findall(
        r'^tom_pipeline_turns_total\{outcome="(\w+)"\} (\S+)$', metrics, re.M)
        if float(count)}


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
    voices = caller_voices()
    state = tempfile.mkdtemp(prefix="tom-bench-")
    process, ready = start_tom(calls, state, log_path)
    switch = FakeSwitch(tom_address=("127.0.0.1", ready["esl_port"]))
    switch.start()
    report: dict = {"asked": 0, "e2e": [], "barge_in": [], "turns": [], "unanswered": []}
    try:
        listening = listening_cost(switch, process.pid, calls)
        holding_before = holding_phrases(admin_get(ready["admin_port"], "/metrics"))
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
        metrics = admin_get(ready["admin_port"], "/metrics")
        held = holding_phrases(metrics) - holding_before
        outcomes = turn_outcomes(metrics)
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
        "turn_outcomes": outcomes,
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
