"""The speech engine: loads every model once per process and serves many conversations.

Each model runs in its own pool of real threads (see speech/offload.py): Whisper and Piper
one call at a time, the LLM one completion per loaded instance. Conversations are cheap:
they hold only their own VAD state, history and playback.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Callable

import gevent
import numpy as np

from tomctl.audio.frames import SUPPORTED_RATES
from tomctl.audio.vad import SileroVad
from tomctl.config import Device, Settings
from tomctl.logs import event
from tomctl.metrics import Metrics
from tomctl.speech import assets
from tomctl.speech.llama import LlamaLanguageModel, Message
from tomctl.speech.offload import StopFlag, Workers
from tomctl.speech.persona import Persona, load_persona
from tomctl.speech.piper import PiperTextToSpeech
from tomctl.speech.whisper import Transcript, WhisperSpeechToText

log = logging.getLogger(__name__)

STT_TIMEOUT_S = 10.0
TTS_TIMEOUT_S = 10.0


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


class Engine:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.models: dict[str, LoadedModel] = {}
        self._phrases: dict[tuple[str, int], list[bytes]] = {}

    def start(self) -> None:
        """Load and warm every model; raises ModelError/ConfigError naming what is wrong."""
        speech = self.settings.speech
        self.persona: Persona = load_persona(self.settings.persona)
        use_cuda = speech.device is Device.CUDA or (speech.device is Device.AUTO
                                                     and cuda_available())
        device = "cuda" if use_cuda else "cpu"
        threads = speech.cpu_threads or os.cpu_count() or 1
        self.vad = SileroVad()
        self.stt = WhisperSpeechToText(
            assets.stt_model_dir(speech.stt_model), self.settings.persona.language, device,
            threads, speech.stt_min_window_ms, speech.stt_no_speech_threshold)
        self.llm = LlamaLanguageModel(
            assets.llm_model_file(speech.llm_model), speech.llm_instances,
            speech.llm_context_tokens, speech.llm_max_tokens, speech.llm_temperature, threads,
            speech.llm_gpu_layers if use_cuda else 0)
        self.tts = PiperTextToSpeech(assets.tts_voice_file(speech.tts_voice), use_cuda, threads)
        for name, model, path in (("vad", self.vad, self.vad.path),
                                  ("stt", self.stt, self.stt.model_dir),
                                  ("llm", self.llm, self.llm.path),
                                  ("tts", self.tts, self.tts.voice_path)):
            started = time.monotonic()
            # Loading is blocking I/O and C code: keep the hub free (signals, later servers).
            gevent.get_hub().threadpool.apply(model.load)
            self.models[name] = LoadedModel(str(path), "cpu" if name == "vad" else device,
                                            round(time.monotonic() - started, 3))
            event(log, "model_loaded", model=name, device=self.models[name].device,
                  seconds=self.models[name].load_s)
        self.stt_workers = Workers("stt", 1)
        self.llm_workers = Workers("llm", speech.llm_instances)
        self.tts_workers = Workers("tts", 1)
        self._warm_up()

    def _warm_up(self) -> None:
        """First inferences are slow (allocation, the system prompt's KV state): pay at start."""
        self.transcribe(np.zeros(16000, dtype=np.float32))
        for _ in range(self.settings.speech.llm_instances):
            self.llm_workers.run(self.llm.stream_sentences, self.messages([], "Hello."),
                                 StopFlag(), lambda kind, value: None, time.monotonic(),
                                 timeout_s=60)
        for name, text in self.persona.phrases.items():
            for rate in SUPPORTED_RATES:
                self._phrases[(name, rate)] = self.synthesize(text, rate)

    def messages(self, history: list[Message], user_text: str) -> list[Message]:
        return [{"role": "system", "content": self.persona.system_prompt}, *history,
                {"role": "user", "content": user_text}]

    def transcribe_async(self, audio: np.ndarray, stop: StopFlag | None = None):
        """Start transcribing in the STT pool; the result is (Transcript, seconds taken), or
        None when ``stop`` was set before the job's turn came (a discarded speculation)."""
        def work() -> tuple[Transcript, float] | None:
            if stop is not None and stop.is_set():
                return None
            started = time.monotonic()
            transcript = self.stt.transcribe(audio)
            return transcript, time.monotonic() - started

        return self.stt_workers.submit(work)

    def finish_transcription(self, job) -> tuple[Transcript | None, float]:
        """(transcript, seconds); (None, 0) for a job stopped before its turn came."""
        result = job.get(timeout=STT_TIMEOUT_S)
        if result is None:
            return None, 0.0
        transcript, seconds = result
        self.metrics.stt_latency.observe(seconds)
        return transcript, seconds

    def transcribe(self, audio: np.ndarray) -> Transcript:
        return self.finish_transcription(self.transcribe_async(audio))[0]

    def synthesize(self, text: str, rate: int) -> list[bytes]:
        return self.tts_workers.run(self.tts.synthesize, text, rate, timeout_s=TTS_TIMEOUT_S)

    def start_reply(self, messages: list[Message], stop: StopFlag,
                    emit: Callable[[str, object], None], first_audio=None):
        """Start an LLM completion in the LLM pool; ``emit`` is called from the worker thread
        for each event and finally with ("done", None) or ("error", exception)."""
        submitted = time.monotonic()

        def work() -> None:
            try:
                self.llm.stream_sentences(messages, stop, emit, submitted, first_audio)
            except Exception as exc:  # the thread boundary: hand every failure to the greenlet
                emit("error", exc)
            else:
                emit("done", None)

        return self.llm_workers.submit(work)

    def prime(self, messages: list[Message]) -> None:
        """Evaluate a prompt prefix into the LLM's KV cache in the background."""
        def work() -> None:
            try:
                self.llm.prime(messages)
            except Exception:  # the thread boundary: priming is only an optimisation
                event(log, "llm_prime_failed", level=logging.WARNING, exc_info=True)

        self.llm_workers.submit(work)

    def phrase(self, name: str, rate: int) -> list[bytes]:
        return self._phrases[(name, rate)]

    def close(self) -> None:
        for workers in ("stt_workers", "llm_workers", "tts_workers"):
            if hasattr(self, workers):
                getattr(self, workers).close()
