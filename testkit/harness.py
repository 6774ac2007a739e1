"""Drives a Conversation like a phone line would: caller audio in, paced in real time;
TOM's audio out through a real PacedSink whose frames are recorded as what the caller heard."""

from __future__ import annotations

import time

import gevent
import gevent.queue
import numpy as np

from tomctl.audio.frames import FRAME_MS, frame_bytes, pcm_to_float, to_frames
from tomctl.audio.sink import PacedSink
from tomctl.conversation.conversation import Conversation
from testkit.measure import audible_span
from testkit.speech import silence, with_noise

FRAME_S = FRAME_MS / 1000


class CallHarness:
    def __init__(self, engine, rate: int = 8000, tools=None) -> None:
        self.rate = rate
        self.heard: list[tuple[float, bytes]] = []
        self.events: gevent.queue.Queue = gevent.queue.Queue()
        self.log: list[tuple[str, dict]] = []
        self.log_at: list[float] = []      # monotonic time of each logged event
        self.sink = PacedSink(lambda frame: self.heard.append((time.monotonic(), frame)),
                              rate, engine.metrics)
        self.conversation = Conversation(engine, self.sink, rate, self._record, tools=tools)

    def _record(self, kind: str, **data) -> None:
        self.log.append((kind, data))
        self.log_at.append(time.monotonic())
        self.events.put((len(self.log) - 1, kind, data))

    def __enter__(self) -> "CallHarness":
        self.sink.start()
        self.conversation.start()
        return self

    def __exit__(self, *exc) -> None:
        self.conversation.close()
        self.sink.stop()

    def feed(self, audio: np.ndarray, realtime: bool = True) -> None:
        """Feed caller audio in 20 ms frames; paced on a monotonic schedule like a phone line
        (realtime), or as fast as the hub allows."""
        frames = to_frames(audio, self.rate)
        next_at = time.monotonic()
        for frame in frames:
            assert len(frame) == frame_bytes(self.rate)
            self.conversation.feed(frame)
            if realtime:
                next_at += FRAME_MS / 1000
                gevent.sleep(max(0.0, next_at - time.monotonic()))
            else:
                gevent.sleep(0)

    def feed_until(self, audio: np.ndarray, kind: str, timeout_s: float,
                   since: int = 0) -> dict:
        """Feed ``audio`` in real time until event ``kind`` arrives."""
        feeder = gevent.spawn(self.feed, audio)
        try:
            return self.wait_for(kind, timeout_s, since)
        finally:
            feeder.kill()

    def feed_silence_until_idle(self, timeout_s: float) -> bool:
        """Keep the line open (a phone line never stops sending) until TOM has finished."""
        feeder = gevent.spawn(self.feed, np.zeros(int(timeout_s * self.rate), np.float32))
        try:
            return self.sink.wait_idle(timeout_s=timeout_s)
        finally:
            feeder.kill()

    def wait_for(self, kind: str, timeout_s: float, since: int = 0) -> dict:
        """The next event ``kind`` not yet waited for, logged at index ``since`` or later."""
        with gevent.Timeout(timeout_s, AssertionError(f"no {kind!r} event within {timeout_s}s; "
                                                      f"saw {self.kinds()}")):
            while True:
                index, got, data = self.events.get()
                if got == kind and index >= since:
                    return data

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.log]

    def heard_audio(self) -> np.ndarray:
        if not self.heard:
            return np.zeros(0, dtype=np.float32)
        return pcm_to_float(b"".join(frame for _, frame in self.heard))


def timed_answer(engine, audio: np.ndarray, rate: int, snr_db: float = 30, tools=None,
                 timeout_s: float = 20, then=None) -> dict:
    """Speak ``audio`` into a fresh call and wait for TOM's answer to all of it, timed where
    the caller is: ``e2e_ms`` from the last audible sample to the first answer frame sent
    (None if TOM talked before the caller had finished, ``talked_early``). ``then(reply)``
    may give what the caller says next, once TOM is quiet (the reply to a question TOM
    asked): TOM's answer to it is ``follow_up``."""
    with CallHarness(engine, rate, tools) as call:
        # Frames are handed over when their span starts; a phone line delivers them when it
        # ends: charge the 20 ms back.
        fed_at = time.monotonic() - FRAME_S
        call.feed(audio)
        fed_until = len(call.log)
        _, last = audible_span(audio, rate)
        end_at = fed_at + last
        try:
            call.feed_until(with_noise(silence(timeout_s, rate), snr_db, seed=7), "reply_done",
                            timeout_s, since=fed_until)
        except AssertionError:
            return {"answered": False, "talked_early": True}
        early = [t for t, _ in call.heard if t < end_at]
        answer = [t for t, _ in call.heard if t >= end_at]
        transcripts = [d["text"] for k, d in call.log if k == "transcript"]
        ended = [d for k, d in call.log if k == "end_of_turn"]
        tools_used = [d for k, d in call.log if k == "tool"]
        done = [d for k, d in call.log if k == "reply_done"][-1]
        answered = call.conversation._reply      # the turn answered last: what Whisper heard
        follow_up = then(done["text"]) if then is not None else None
        if follow_up is not None:
            follow_up = _answer_to(call, follow_up, rate, snr_db, timeout_s)
        return {"answered": True, "talked_early": bool(early), "follow_up": follow_up,
                "turn_audio": answered.utterance_audio if answered is not None else None,
                "end_of_turn": ended[-1] if ended else None, "latencies": done["latencies"],
                "e2e_ms": (answer[0] - end_at) * 1000 if answer and not early else None,
                "transcript": transcripts[-1] if transcripts else "", "reply": done["text"],
                "tool": tools_used[-1] if tools_used else None}


def _answer_to(call: CallHarness, audio: np.ndarray, rate: int, snr_db: float,
               timeout_s: float) -> dict:
    """What TOM says to ``audio``, said once TOM is quiet: its transcript and reply text."""
    if not call.feed_silence_until_idle(timeout_s):
        return {"answered": False}
    since = len(call.log)
    call.feed(audio)
    try:
        done = call.feed_until(with_noise(silence(timeout_s, rate), snr_db, seed=8),
                               "reply_done", timeout_s, since=since)
    except AssertionError:
        return {"answered": False}
    transcripts = [d["text"] for k, d in call.log[since:] if k == "transcript"]
    return {"answered": True, "transcript": transcripts[-1] if transcripts else "",
            "reply": done["text"]}
