"""Text-to-speech with Piper, resampled with soxr to the conversation's rate."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from tomctl.audio.frames import resample, to_frames
from tomctl.errors import ModelError, TextToSpeechError

# Piper normalises each sentence to full scale; leave headroom so that resampling and the
# phone codec do not clip.
_VOLUME = 0.7


class _ShrinkingSession:
    """An ONNX session whose CPU memory arena gives back, every few runs, what it no longer
    needs.

    The arena grows to fit the longest sentence synthesised so far and keeps it: over an
    hour of calls RSS stepped up by hundreds of MB. Measured on 100 sentences of 3 to 45
    words: never shrinking, 137 → 448 MB; shrinking after every run, 137 → 240 MB but each
    sentence 15 % slower (its buffers are allocated again). Every SHRINK_EVERY runs keeps
    the growth bounded for about 2 % of Piper's time."""

    SHRINK_EVERY = 8

    def __init__(self, session) -> None:
        import onnxruntime

        self._session = session
        self._shrink = onnxruntime.RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self._runs = 0

    def run(self, output_names, input_feed, run_options=None):
        self._runs += 1     # a race between two threads costs one shrink, nothing more
        shrink = self._runs % self.SHRINK_EVERY == 0
        return self._session.run(output_names, input_feed,
                                 self._shrink if shrink and run_options is None
                                 else run_options)

    def __getattr__(self, name: str):
        return getattr(self._session, name)


class PiperTextToSpeech:
    def __init__(self, voice_path: Path, use_cuda: bool, thread_choices: list[int]) -> None:
        self.voice_path = voice_path
        self.use_cuda = use_cuda
        self.thread_choices = thread_choices
        self._voice = None
        self._voices: dict[int, object] = {}   # one ONNX session per thread count

    def load(self) -> None:
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig, SynthesisConfig
        from piper.voice import ESPEAK_DATA_DIR

        try:
            config = PiperConfig.from_dict(json.loads(
                Path(f"{self.voice_path}.json").read_text(encoding="utf-8")))
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if self.use_cuda \
                else ["CPUExecutionProvider"]
            for threads in self.thread_choices:
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                # Between runs ONNX Runtime's workers would spin for a while, burning a core
                # the scheduler has handed to another job (one thread has no pool at all).
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                options.log_severity_level = 3
                session = onnxruntime.InferenceSession(str(self.voice_path),
                                                       sess_options=options,
                                                       providers=providers)
                self._voices[threads] = PiperVoice(config=config,
                                                   session=_ShrinkingSession(session),
                                                   espeak_data_dir=Path(ESPEAK_DATA_DIR),
                                                   download_dir=self.voice_path.parent)
            self._voice = self._voices[self.thread_choices[0]]
        except Exception as exc:  # json, onnxruntime and piper each raise their own errors
            raise ModelError(f"Piper voice {self.voice_path} could not be loaded "
                             f"(TOM_TTS_VOICE): {exc}") from exc
        self._syn_config = SynthesisConfig(volume=_VOLUME)
        self.sample_rate = config.sample_rate

    def synthesize(self, text: str, rate: int, threads: int = 0,
                   length_scale: float | None = None) -> list[bytes]:
        """Speak ``text`` as 20 ms s16le frames at ``rate``, computing with at most
        ``threads`` threads, at the voice's pace times ``length_scale`` (below 1: faster).
        Blocking: call it in a worker."""
        if self._voice is None:
            raise RuntimeError("PiperTextToSpeech.load() has not run")
        fitting = [n for n in self._voices if n <= threads]
        voice = self._voices[max(fitting)] if fitting else self._voice
        try:
            config = self._syn_config if length_scale is None else dataclasses.replace(
                self._syn_config, length_scale=length_scale)
            chunks = [c.audio_float_array for c in voice.synthesize(text, config)]
        except (RuntimeError, ValueError) as exc:
            raise TextToSpeechError(f"synthesis failed: {exc}") from exc
        if not chunks:
            return []
        return to_frames(resample(np.concatenate(chunks), self.sample_rate, rate), rate)
