"""Callers for the benches: a caller on the fake switch who asks questions and times TOM's
answers where the caller is, and the plumbing around a `tomctl serve` process."""

from __future__ import annotations

import time
import types
import urllib.request

import gevent

from testkit.fakes import FakeSwitch
from testkit.measure import audible_span, pcm
from testkit.speech import espeak_say, piper_say
from tomctl.speech import assets
from tomctl.speech.piper import PiperTextToSpeech

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


def drain_log(process, log_path: str) -> None:
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
                                     "e2e_ms": round(e2e_ms, 1), "at": time.monotonic()})
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


def voices() -> list:
    """The callers' voices: the bundled Piper voice (loaded here, without the engine) and
    espeak-ng's en-us and en-gb; each takes a text and gives float32 audio at RATE."""
    tts = PiperTextToSpeech(assets.tts_voice_file(""), False, [1])
    tts.load()
    speaker = types.SimpleNamespace(tts=tts)
    return [lambda text: piper_say(speaker, text, RATE),
            lambda text: espeak_say(text, RATE, "en-us"),
            lambda text: espeak_say(text, RATE, "en-gb")]
