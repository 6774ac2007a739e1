"""The speech engine: loads every model once per process and serves many conversations.

Every inference job goes through one scheduler (speech/scheduler.py): it computes only in
one of the CPU budget's slots, and the job that brings some caller their first answer audio
goes first. Every model runs with the budget's threads per job, decided here and nowhere
else. Conversations are cheap: they hold only their own VAD state, history and playback.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Callable

import gevent
import numpy as np

from tomctl.audio.frames import SUPPORTED_RATES
from tomctl.audio.vad import SileroVad
from tomctl.config import Device, Settings, usable_cores
from tomctl.logs import event
from tomctl.metrics import Metrics
from tomctl.speech import assets
from tomctl.speech.llama import LlamaLanguageModel, Message
from tomctl.speech.offload import StopFlag
from tomctl.speech.scheduler import DROPPED, Running, Scheduler, Ticket
from tomctl.speech.scheduling import Budget, Turn, cpu_budget
from tomctl.speech.persona import Persona, load_persona
from tomctl.speech.piper import PiperTextToSpeech
from tomctl.speech.smart_turn import SmartTurn
from tomctl.speech.spoken_cache import SpokenCache
from tomctl.speech.whisper import Transcript, WhisperSpeechToText

log = logging.getLogger(__name__)

# Deadlines for a job once it computes; its wait in the queue is not held against them.
STT_TIMEOUT_S = 10.0
TURN_TIMEOUT_S = 5.0
TTS_TIMEOUT_S = 10.0
# Two callers' utterances may be transcribed at once (two CTranslate2 replicas), and two
# sentences synthesised (an ONNX session runs in several threads at once).
STT_WORKERS = 2
TTS_WORKERS = 2
WIDE_SLOTS = 2


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    path: str
    device: str
    load_s: float


def cuda_available() -> bool:
    try:
        import ctranslate2
        return ctranslate2.get_cuda_device_count() > 0
    except (ImportError, RuntimeError):
        return False

FACTS_PROMPT = {
    "en": "{text}\n\nFacts from the shop's records: {facts}\nAnswer only from these facts, "
          "in one or two short sentences. Never name a part, price, time or status that is "
          "not in them.",
    "de": "{text}\n\nFakten aus den Unterlagen des Geschäfts: {facts}\nAntworte nur mit "
          "diesen Fakten, in ein oder zwei kurzen Sätzen. Nenne nie ein Teil, einen Preis, "
          "eine Zeit oder einen Status, der nicht darin steht.",
}


class Engine:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.models: dict[str, LoadedModel] = {}
        self._phrases: dict[tuple[str, int], list[bytes]] = {}
        self._voices: dict[str, PiperTextToSpeech] = {}      # variants' own voices
        self._spoken = SpokenCache(settings.speech.tts_cache_mb * 1024 * 1024)

    def start(self) -> None:
        """Load and warm every model; raises ModelError/ConfigError naming what is wrong."""
        speech = self.settings.speech
        self.persona: Persona = load_persona(self.settings.persona)
        use_cuda = speech.device is Device.CUDA or (speech.device is Device.AUTO
                                                     and cuda_available())
        device = "cuda" if use_cuda else "cpu"
        self.budget: Budget = cpu_budget(speech.cpu_threads or usable_cores())
        threads = self.budget.threads_per_job
        # One copy per call keeps every caller's history evaluated (the weights are mapped
        # once and shared; a copy costs its KV cache).
        self.llm_instances = speech.llm_instances or self.settings.telephony.max_calls
        # Piper may compute in two slots when nobody else needs the second: its ONNX threads
        # sleep while they wait for each other. llama.cpp's never do: its threads meet at a
        # barrier after every operation of every token, and one that anything else on the
        # machine (FreeSWITCH, a backup) pushes off its core leaves the other spinning. With
        # two busy processes beside it, 32 tokens took up to 91 s with two threads and 0.7 s
        # with one; alone, two threads saved 20 ms of the first token. So the LLM computes in
        # one slot. Whisper (CTranslate2) measured slower with two threads than with one.
        self._tts_slots = min(WIDE_SLOTS, self.budget.slots)
        self.vad = SileroVad()
        self.stt = WhisperSpeechToText(
            assets.stt_model_dir(speech.stt_model), self.settings.persona.language, device,
            threads, speech.stt_min_window_ms, speech.stt_no_speech_threshold, STT_WORKERS)
        self.llm = LlamaLanguageModel(
            assets.llm_model_file(speech.llm_model), self.llm_instances,
            speech.llm_context_tokens, speech.llm_max_tokens, speech.llm_temperature, threads,
            speech.llm_gpu_layers if use_cuda else 0, speech.llm_max_sentences,
            Path(speech.cache))
        self.tts = PiperTextToSpeech(assets.tts_voice_file(speech.tts_voice), use_cuda,
                                     [threads * slots for slots in range(1, self._tts_slots + 1)])
        self.turn_model = SmartTurn(assets.turn_model_file(self.settings.turns.turn_model),
                                    threads)
        for name, model, path in (("vad", self.vad, self.vad.path),
                                  ("turn", self.turn_model, self.turn_model.path),
                                  ("stt", self.stt, self.stt.model_dir),
                                  ("llm", self.llm, self.llm.path),
                                  ("tts", self.tts, self.tts.voice_path)):
            started = time.monotonic()
            # Loading is blocking I/O and C code: keep the hub free (signals, later servers).
            gevent.get_hub().threadpool.apply(model.load)
            self.models[name] = LoadedModel(str(path),
                                            "cpu" if name in ("vad", "turn") else device,
                                            round(time.monotonic() - started, 3))
            event(log, "model_loaded", model=name, device=self.models[name].device,
                  seconds=self.models[name].load_s)
        self.scheduler = Scheduler(self.budget, self.metrics)
        self.scheduler.add_stage("stt", STT_WORKERS)
        self.scheduler.add_stage("llm", self.llm_instances)
        self.scheduler.add_stage("tts", TTS_WORKERS)
        self.scheduler.add_stage("turn", 1)
        self.scheduler.start()
        event(log, "cpu_budget", slots=self.budget.slots,
              threads_per_job=self.budget.threads_per_job)
        self._warm_up()

    def _warm_up(self) -> None:
        """First inferences are slow (allocation, the system prompt's KV state): pay at start."""
        self.transcribe(np.zeros(16000, dtype=np.float32))
        # Start-up work has the machine to itself: it runs as a caller's would.
        warming = [self.scheduler.submit("llm", self.llm.stream_sentences,
                                         self.messages([], "Hello."), StopFlag(),
                                         lambda kind, value: None, first_audio=True,
                                         turn=Turn(time.monotonic()))
                   for _ in range(self.llm_instances)]
        for ticket in warming:
            ticket.get(run_timeout_s=60)
        for name, text in self.persona.phrases.items():
            self.add_phrase(name, text)

    def messages(self, history: list[Message], user_text: str, facts: str = "",
                 system_prompt: str | None = None) -> list[Message]:
        """The prompt for answering ``user_text``. ``facts`` (looked up by the tool hub) go
        with the caller's words, after the history, so that the system prompt's and the
        history's evaluated state stay valid."""
        if facts:
            user_text = FACTS_PROMPT["de" if self.settings.persona.language == "de"
                                     else "en"].format(text=user_text, facts=facts)
        return [{"role": "system", "content": system_prompt or self.persona.system_prompt},
                *history, {"role": "user", "content": user_text}]

    def transcribe_async(self, audio: np.ndarray, stop: StopFlag | None = None,
                         turn: Turn | None = None, hint: str = "") -> Ticket:
        """Queue a transcription; the result is (Transcript, seconds taken), or None when
        ``stop`` was set before the job's turn came (a discarded speculation). ``turn`` is
        the answer it is for (None: background work, such as a selfcheck)."""
        def work(running: Running) -> tuple[Transcript, float] | None:
            if stop is not None and stop.is_set():
                return None
            started = time.monotonic()
            transcript = self.stt.transcribe(audio, hint)
            return transcript, time.monotonic() - started

        return self.scheduler.submit("stt", work, first_audio=True, turn=turn, stop=stop)

    def finish_transcription(self, ticket: Ticket) -> tuple[Transcript | None, float]:
        """(transcript, seconds); (None, 0) for a job stopped before its turn came."""
        result = ticket.get(run_timeout_s=STT_TIMEOUT_S)
        if result is None or result is DROPPED:
            return None, 0.0
        transcript, seconds = result
        self.metrics.stt_latency.observe(seconds)
        return transcript, seconds

    def turn_complete_async(self, audio: np.ndarray, turn: Turn) -> Ticket:
        """Queue an end-of-turn question about ``audio`` (16 kHz, the turn so far); the
        result is Smart Turn's probability that it is complete. It decides when the caller's
        wait begins to end, so it ranks with first audio."""
        asked = Turn(turn.speech_end_at, confirmed=True, owner=turn.owner)
        return self.scheduler.submit("turn", lambda running: self.turn_model.complete_probability(
            audio), first_audio=True, turn=asked)

    def transcribe(self, audio: np.ndarray) -> Transcript:
        return self.finish_transcription(self.transcribe_async(audio))[0]

    def synthesize(self, text: str, rate: int, turn: Turn | None = None,
                   first_audio: bool = True, stop: StopFlag | None = None,
                   length_scale: float | None = None, voice: str | None = None,
                   said_before: bool = True) -> list[bytes]:
        """Speak ``text`` as 20 ms frames; ``turn`` and ``first_audio`` say how urgent it is.
        No frames if ``stop`` is set before its turn comes (the answer was given up).
        ``voice``: the path of a voice loaded with :meth:`add_voice` (a variant's).
        ``said_before``: the audio of the same sentence said before may be used (False: Piper
        synthesises it, as the health probe needs)."""
        if stop is not None and stop.is_set():
            return []
        key = (text, rate, voice, length_scale)
        if said_before:
            frames = self._spoken.get(key)
            self.metrics.spoken_cache.labels("hit" if frames else "miss").inc()
            if frames:
                return frames
        tts = self._voices.get(voice, self.tts) if voice else self.tts

        def work(running: Running) -> list[bytes]:
            if stop is not None and stop.is_set():
                return []
            return tts.synthesize(text, rate, running.threads, length_scale)

        started = time.monotonic()
        ticket = self.scheduler.submit("tts", work, first_audio=first_audio, turn=turn,
                                       max_slots=self._tts_slots, stop=stop)
        frames = ticket.get(run_timeout_s=TTS_TIMEOUT_S)
        if frames is DROPPED:
            return []
        if first_audio and turn is not None and frames:
            # An answer's first sentence, synthesised: audio said before would hide a slow
            # Piper.
            self.metrics.tts_latency.observe(time.monotonic() - started)
        if said_before:
            self._spoken.put(key, frames)
        return frames

    def start_reply(self, messages: list[Message], stop: StopFlag,
                    emit: Callable[[str, object], None], turn: Turn | None = None,
                    key: object = None, temperature: float | None = None) -> Ticket:
        """Queue an LLM completion; ``emit`` is called from the worker thread for each event
        and finally with ("done", None) or ("error", exception). The job is first-audio work
        up to its first sentence, then continuation that yields to more urgent work between
        tokens. ``key`` names the conversation, so it is answered by the LLM copy that holds
        its history."""
        def work(running: Running) -> None:
            try:
                self.llm.stream_sentences(running, messages, stop, emit, key, temperature)
            except Exception as exc:  # the thread boundary: hand every failure to the greenlet
                emit("error", exc)
            else:
                emit("done", None)

        ticket = self.scheduler.submit("llm", work, first_audio=True, turn=turn, stop=stop,
                                       checkpoints=True)
        # Dropped before it computed, the completion says nothing: end it for its reader.
        ticket.result.rawlink(lambda result: emit("done", None)
                              if result.successful() and result.value is DROPPED else None)
        return ticket

    def drop_stopped(self) -> None:
        """Queued work for answers given up is dropped now (see Scheduler.drop_stopped)."""
        self.scheduler.drop_stopped()

    def prime(self, messages: list[Message], key: object = None,
              stop: StopFlag | None = None) -> None:
        """Evaluate conversation ``key``'s prompt prefix ahead of its next turn, as
        background work; skipped if ``stop`` is set before its turn comes (a newer history,
        or the completion that evaluates it anyway)."""
        def work(running: Running) -> None:
            if stop is not None and stop.is_set():
                return
            try:
                self.llm.prime(messages, key)
            except Exception:  # the thread boundary: priming is only an optimisation
                event(log, "llm_prime_failed", level=logging.WARNING, exc_info=True)

        self.scheduler.submit("llm", work, first_audio=False, turn=None, stop=stop)

    def phrase(self, name: str, rate: int) -> list[bytes]:
        return self._phrases[(name, rate)]

    def add_phrase(self, name: str, text: str, length_scale: float | None = None,
                   voice: str | None = None) -> None:
        """Synthesise a phrase (a variant's in its voice and pace) at every rate, before
        calls use it; ``phrase(name, rate)`` then says it."""
        for rate in SUPPORTED_RATES:
            # Kept here already: not again among the sentences said before.
            self._phrases[(name, rate)] = self.synthesize(text, rate, Turn(time.monotonic()),
                                                          first_audio=False,
                                                          length_scale=length_scale,
                                                          voice=voice, said_before=False)

    def add_voice(self, path: str) -> None:
        """Load another Piper voice (a variant's), once; ModelError names it if it fails."""
        if path in self._voices:
            return
        voice = PiperTextToSpeech(Path(path), self.tts.use_cuda, self.tts.thread_choices)
        gevent.get_hub().threadpool.apply(voice.load)
        self._voices[path] = voice
        event(log, "model_loaded", model="tts", voice=path)

    def close(self) -> None:
        if hasattr(self, "scheduler"):
            self.scheduler.close()
