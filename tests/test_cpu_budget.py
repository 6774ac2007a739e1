"""The CPU budget with the real models: every model computes with the threads the budget
gives it, and a long conversation never has more threads computing than the budget's cores.

Two thread pools on two cores made long conversations stall: llama.cpp, Whisper and Piper
each started a thread per core, and when they ran at once (the history evaluated again
while an answer was synthesised and the caller's next words transcribed) llama.cpp's
threads waited at every step for a sibling that had lost its core. These tests fail on that
mechanism, not on a timing.
"""

import os

import gevent
import pytest

from testkit.harness import CallHarness
from testkit.speech import silence
from tomctl.config import usable_cores
from tomctl.speech.offload import StopFlag

pytestmark = pytest.mark.timeout(240)


def test_every_model_computes_with_the_threads_of_its_slots(engine):
    budget = engine.budget
    cores = engine.settings.speech.cpu_threads or usable_cores()
    assert budget.slots * budget.threads_per_job <= cores
    for model in engine.llm._free:
        assert model.context_params.n_threads == budget.threads_per_job
        assert model.context_params.n_threads_batch == budget.threads_per_job
    assert engine.stt._cpu_threads == budget.threads_per_job
    for threads, voice in engine.tts._voices.items():
        options = voice.session.get_session_options()
        assert options.intra_op_num_threads == threads <= budget.slots * budget.threads_per_job
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    # OpenMP's threads (llama.cpp's, CTranslate2's) sleep at barriers instead of spinning.
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_the_llm_computes_in_one_slot_even_when_the_other_is_free(engine):
    """llama.cpp's threads spin at a barrier after every operation: a second thread that
    another process on the machine pushes off its core stalls every token."""
    threads = []
    stream = engine.llm.stream_sentences

    def spy(running, *args, **kwargs):
        threads.append(running.threads)
        return stream(running, *args, **kwargs)

    engine.llm.stream_sentences = spy
    try:
        with CallHarness(engine, 8000) as call:
            call.conversation.hear_text("Do you sell tyres?")
            assert call.wait_for("reply_done", timeout_s=60)["text"]
    finally:
        del engine.llm.stream_sentences
    assert threads == [engine.budget.threads_per_job]


def keep_line_open(call) -> None:
    second = silence(1.0, 8000)
    while True:
        call.feed(second)


class BudgetWatch:
    """Records, at every change of the scheduler's slots, how many threads compute."""

    def __init__(self, scheduler) -> None:
        self.scheduler = scheduler
        self.peak_threads = 0
        self.background_jobs = 0
        self._dispatch = scheduler._dispatch
        scheduler._dispatch = self.dispatch

    def dispatch(self) -> None:
        self._dispatch()
        scheduler = self.scheduler
        computing = scheduler.budget.slots - scheduler._free_slots()
        self.peak_threads = max(self.peak_threads,
                                computing * scheduler.budget.threads_per_job)
        assert scheduler._free_slots() >= 0

    def close(self) -> None:
        self.scheduler._dispatch = self._dispatch


def test_a_long_conversation_never_computes_with_more_threads_than_cores(engine):
    """Fourteen typed turns, each after an interrupted greeting, with the caller's line
    open all the time: every answer synthesised while the next is generated, the history
    evaluated again after each turn, trimmed past TOM_LLM_HISTORY_TURNS."""
    watch = BudgetWatch(engine.scheduler)
    priming = []
    prime = engine.prime
    engine.prime = lambda messages, key=None, stop=None: (priming.append(len(messages)),
                                                          prime(messages, key, stop))[-1]
    turns = 2 * engine.settings.speech.llm_history_turns + 2
    try:
        with CallHarness(engine, 8000) as call:
            line = gevent.spawn(keep_line_open, call)
            for number in range(turns):
                call.conversation.say("greeting")
                call.wait_for("reply_text", timeout_s=10)
                call.conversation.interrupt()
                seen = len(call.log)
                call.conversation.hear_text(f"Question number {number}: do you sell tyres?")
                done = call.wait_for("reply_done", timeout_s=60, since=seen)
                assert done["text"], f"turn {number} was not answered"
            line.kill()
            history = call.conversation.history
    finally:
        watch.close()
        engine.prime = prime
    cores = engine.settings.speech.cpu_threads or usable_cores()
    assert watch.peak_threads <= cores
    assert len(history) <= 2 * engine.settings.speech.llm_history_turns
    assert len(priming) >= turns                  # the history was evaluated ahead each turn
    assert min(priming[turns:]) < max(priming)    # and trimmed on the way


def test_a_quiet_line_rests_the_vad_model_and_speech_still_wakes_it(engine):
    from testkit.speech import espeak_say, with_noise
    from tomctl.audio.frames import resample
    from tomctl.audio.vad import CHUNK_MS

    stream = engine.vad.stream()
    hiss = with_noise(silence(3.0, 16000) + 1e-3, 60)      # a silent caller's line noise
    quiet = stream.process(hiss)
    assert max(p for p, _ in quiet) < 0.1
    assert stream.model_runs <= 10, "the model kept running on a quiet line"
    speech = resample(espeak_say("Hello, I need new brake pads.", 8000), 8000, 16000)
    heard = [p for p, _ in stream.process(speech)]
    onset = next(i for i, p in enumerate(heard) if p >= engine.settings.turns.vad_threshold)
    # The first syllable is scored within a few chunks, as on a line that was never quiet.
    fresh = [p for p, _ in engine.vad.stream().process(speech)]
    fresh_onset = next(i for i, p in enumerate(fresh) if p >= engine.settings.turns.vad_threshold)
    assert onset <= fresh_onset + 1, (onset, fresh_onset, CHUNK_MS)


def test_a_sentence_said_before_is_not_synthesised_again(engine, monkeypatch):
    """The same hours or "Yes, we have that." for the next caller costs no CPU: its audio is
    the one said before, unless anything that changes its sound differs."""
    synthesised = []
    real = engine.tts.synthesize
    monkeypatch.setattr(engine.tts, "synthesize",
                        lambda text, *args: synthesised.append(text) or real(text, *args))
    def hits():
        return engine.metrics.registry.get_sample_value("tom_tts_cache_total",
                                                        {"result": "hit"}) or 0

    text = "On Saturday we are open from 9 am to 1 pm."
    first = engine.synthesize(text, 8000)
    before = hits()
    assert engine.synthesize(text, 8000) == first
    assert hits() == before + 1
    assert synthesised == [text]
    # Another rate or pace is other audio; a stopped answer gets none; the health probe
    # checks Piper itself.
    assert engine.synthesize(text, 16000) and synthesised == [text] * 2
    assert engine.synthesize(text, 8000, length_scale=1.2) and synthesised == [text] * 3
    stop = StopFlag()
    stop.set()
    assert engine.synthesize(text, 8000, stop=stop) == []
    assert engine.synthesize(text, 8000, said_before=False) and synthesised == [text] * 4
