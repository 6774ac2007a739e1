"""Phone-path benchmark: calls through a running TOM service, placed by the test suite's fake
FreeSWITCH over real TCP and UDP sockets, with real models.

    python bench/phone.py --json [--calls 12]

Each call is answered and greeted. In half the calls the caller interrupts the greeting
about a second in; in the other half the caller waits for the greeting to end, asks a
question and waits for the answer. Times are taken where the caller is: the fake switch
sends caller frame k at the end of its 20 ms span and stamps TOM's datagrams on arrival.
Prints p50/p95 in milliseconds:

  barge_in     caller's first audible sample to the end of the last frame of TOM's voice
               the caller receives (TOM stops sending and drops what was queued)
  e2e          caller's last audible sample to the first frame of the answer received
  answer       the socket connecting to TOM's first greeting frame received
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import gevent
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes import FakeSwitch  # noqa: E402
from tests.speech import espeak_say, piper_say, silence  # noqa: E402
from tomctl import config  # noqa: E402
from tomctl.engine import Engine  # noqa: E402
from tomctl.metrics import Metrics  # noqa: E402
from tomctl.service import Service  # noqa: E402

RATE = 8000
FRAME_S = 0.02
QUESTIONS = ["Do you have brake pads for a Volkswagen Golf?",
             "What time do you open on Saturday?",
             "Can I order spark plugs for delivery tomorrow?",
             "How much is an oil filter for a Ford Focus?"]
TARGETS_MS = {"e2e": 800, "barge_in": 120}


def pcm(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def audible(audio: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.abs(audio) > 0.01) / RATE


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None, "n": 0}
    return {"p50": round(float(np.percentile(values, 50)), 1),
            "p95": round(float(np.percentile(values, 95)), 1), "n": len(values)}


def wait_until(predicate, timeout_s: float) -> None:
    with gevent.Timeout(timeout_s):
        while not predicate():
            gevent.sleep(0.01)


def one_call(switch, engine, voice, number: int, samples: dict) -> None:
    greeting_s = len(b"".join(engine.phrase("greeting", RATE))) / 2 / RATE
    question = voice(QUESTIONS[number % len(QUESTIONS)])
    interrupt = number % 2 == 0
    lead_s = (0.8 + 0.1 * (number % 5)) if interrupt else greeting_s + 1.0
    caller = np.concatenate([silence(lead_s, RATE), question, silence(15, RATE)])
    sounds = audible(caller)
    connected_at = time.monotonic()
    call = switch.place_call(pcm(caller))
    call.wait_answered(timeout_s=10)
    call.wait_heard(320, timeout_s=10)
    samples["answer"].append((call.heard[0][0] - connected_at) * 1000)
    onset_at = call.answered_at + sounds[0]
    end_at = call.answered_at + sounds[-1]
    if interrupt:
        wait_until(lambda: call.audio_position_s > sounds[0] + 1.5, 20)
        last = max(t for t, _ in call.heard if t <= onset_at + 1.0)
        samples["barge_in"].append((last + FRAME_S - onset_at) * 1000)
    else:
        wait_until(lambda: any(t > end_at for t, _ in call.heard), 20)
        first = min(t for t, _ in call.heard if t > end_at)
        samples["e2e"].append((first - end_at) * 1000)
    call.hangup()
    call.wait_ended(timeout_s=10)


def run(calls: int) -> dict:
    settings = config.load({"TOM_ESL_LISTEN_PORT": "0", "TOM_SILENCE_TIMEOUT_S": "60",
                            "TOM_GATEWAY_PORT": "0", "TOM_DEV_ALLOW_NO_JWT": "true",
                            "TOM_DB_PATH": os.path.join(tempfile.mkdtemp(), "calls.db"),
                            "TOM_ADMIN_PORT": "0",
                            "TOM_SPOOL_DIR": tempfile.mkdtemp(prefix="tom-bench-")})
    engine = Engine(settings, Metrics())
    engine.start()
    service = Service(settings, engine)
    service.start()
    switch = FakeSwitch(tom_address=("127.0.0.1", service.listener.address[1]))
    switch.start()
    voices = [lambda text: piper_say(engine, text, RATE),
              lambda text: espeak_say(text, RATE, "en-us")]
    samples: dict[str, list[float]] = {"barge_in": [], "e2e": [], "answer": []}
    for number in range(calls):
        one_call(switch, engine, voices[(number // 2) % 2], number, samples)
    service.wait_idle(timeout_s=10)
    service.stop()
    switch.stop()
    engine.close()
    report: dict = {name: percentiles(values) for name, values in samples.items()}
    report.update(calls=calls, device=engine.models["stt"].device, cpu_count=os.cpu_count(),
                  targets_ms=TARGETS_MS)
    report["meets_targets"] = all(report[k]["p95"] is not None and report[k]["p95"] <= target
                                  for k, target in TARGETS_MS.items())
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=12)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    report = run(args.calls)
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
