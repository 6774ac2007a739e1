"""Speech-to-text with faster-whisper, on a shortened encoder window.

Whisper pads every clip to 30 s (3000 mel frames) and the encoder's cost grows with that
window: on a 2-core CPU tiny.en spends ~0.25 s encoding 30 s of mostly padding for a 2 s
question, and ~0.02 s on a 5 s window, with the same text. Below ~3 s the decoder starts to
repeat itself, so the window is the utterance plus a margin, never less than
TOM_STT_MIN_WINDOW_MS. Where Whisper starts the utterance over in the padding, the repeat is
cut off; a result that loops is decoded again on the full 30 s window before it is believed.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import numpy as np

from tomctl.errors import ModelError, SpeechToTextError
from tomctl.speech.sentences import repeats_itself

_FRAMES_PER_SECOND = 100      # Whisper's mel hop is 10 ms
_FULL_WINDOW_FRAMES = 3000
_MARGIN_FRAMES = 100
_MIN_AVG_LOGPROB = -1.0
_TOKENS_PER_SECOND = 6        # generous bound for speech; stops runaway repetition early
_WORD = re.compile(r"\w+")
# Whisper takes at most 223 tokens of previous text; each costs a little decoding time.
_MAX_HINT_TOKENS = 180


@dataclasses.dataclass(frozen=True)
class Transcript:
    text: str                  # empty when dropped
    no_speech_prob: float
    avg_logprob: float
    window_ms: int
    dropped: str | None = None  # why the text was not believed, if it was not


def restart_index(text: str) -> int | None:
    """Where the text starts over (a short window's padding tempts Whisper to go on with the
    utterance's opening words again), as a character index; None if it does not."""
    matches = list(_WORD.finditer(text))
    words = [m.group().lower() for m in matches]
    for k in range(3, len(words) - 2):
        tail = words[k:]
        if len(tail) >= 3 and words[:len(tail)] == tail:
            return matches[k].start()
    return None


def trim_restart(text: str) -> str:
    index = restart_index(text)
    return text if index is None else text[:index].strip()


def drop_reason(text: str, no_speech_prob: float, avg_logprob: float,
                no_speech_threshold: float) -> str | None:
    """Why a decoded text should not be trusted (pure): Whisper's hallucination guards."""
    if not _WORD.search(text):
        return "empty"
    if no_speech_prob > no_speech_threshold and avg_logprob < _MIN_AVG_LOGPROB:
        return "no_speech"
    if repeats_itself(text):
        return "repetition"
    return None


def window_frames(samples: int, min_window_ms: int) -> int:
    frames = math.ceil(samples / 160) + _MARGIN_FRAMES
    frames = math.ceil(frames / 100) * 100
    return int(min(_FULL_WINDOW_FRAMES, max(frames, min_window_ms // 10)))


class WhisperSpeechToText:
    def __init__(self, model_dir: Path, language: str, device: str, cpu_threads: int,
                 min_window_ms: int, no_speech_threshold: float, workers: int = 1) -> None:
        self.model_dir = model_dir
        self.language = language
        self.device = device
        self._cpu_threads = cpu_threads
        self._workers = workers                 # transcriptions that may run at once
        self._min_window_ms = min_window_ms
        self._no_speech_threshold = no_speech_threshold
        self._model = None

    def load(self) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        compute_type = "float16" if self.device == "cuda" else "int8"
        try:
            self._model = WhisperModel(str(self.model_dir), device=self.device,
                                       compute_type=compute_type, cpu_threads=self._cpu_threads,
                                       num_workers=self._workers)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"Whisper model in {self.model_dir} could not be loaded "
                             f"(TOM_STT_MODEL): {exc}") from exc
        if self.language != "en" and not self._model.model.is_multilingual:
            raise ModelError(f"Whisper model in {self.model_dir} is English-only but "
                             f"TOM_LANGUAGE={self.language}; set TOM_STT_MODEL to a multilingual one")
        tokenizer = Tokenizer(self._model.hf_tokenizer, self._model.model.is_multilingual,
                              task="transcribe", language=self.language)
        self._tokenizer = tokenizer
        self._prompt = self._model.get_prompt(tokenizer, [], without_timestamps=True)
        self._hinted: dict[str, list[int]] = {}

    def _prompt_for(self, hint: str) -> list[int]:
        """Whisper's prompt, with ``hint`` as the text said before: names it would otherwise
        mishear ("Honda Civic" as "hundred physics") are then what it expects to hear."""
        if not hint:
            return self._prompt
        prompt = self._hinted.get(hint)
        if prompt is None:
            tokens = self._tokenizer.encode(" " + hint.strip())[-_MAX_HINT_TOKENS:]
            prompt = self._model.get_prompt(self._tokenizer, tokens, without_timestamps=True)
            self._hinted = {hint: prompt}      # one hint per service: no cache to grow
        return prompt

    def transcribe(self, audio: np.ndarray, hint: str = "") -> Transcript:
        """Transcribe 16 kHz float32 mono audio, expecting the words of ``hint``. Blocking:
        call it in a worker thread."""
        if self._model is None:
            raise RuntimeError("WhisperSpeechToText.load() has not run")
        try:
            features = self._model.feature_extractor(audio)
            frames = window_frames(len(audio), self._min_window_ms)
            result = self._decode(features, frames, len(audio), hint)
            if frames < _FULL_WINDOW_FRAMES and repeats_itself(result.text):
                result = self._decode(features, _FULL_WINDOW_FRAMES, len(audio), hint)
        except (RuntimeError, ValueError) as exc:
            raise SpeechToTextError(f"transcription failed: {exc}") from exc
        reason = drop_reason(result.text, result.no_speech_prob, result.avg_logprob,
                             self._no_speech_threshold)
        return dataclasses.replace(result, text="" if reason else result.text, dropped=reason)

    def _decode(self, features: np.ndarray, frames: int, samples: int,
                hint: str) -> Transcript:
        from faster_whisper.audio import pad_or_trim

        encoded = self._model.encode(pad_or_trim(features, frames))
        result = self._generate(encoded, frames, samples, self._prompt_for(hint))
        if hint and result.avg_logprob < _MIN_AVG_LOGPROB:
            # The hint pulls words the caller did not say towards the catalogue's ("Where
            # are you located?" heard as "Wear a Toyota", a question cut to "The"): a decode
            # Whisper itself doubts is made again without it, and the likelier one is kept.
            unhinted = self._generate(encoded, frames, samples, self._prompt)
            if unhinted.avg_logprob > result.avg_logprob:
                result = unhinted
        return result

    def _generate(self, encoded, frames: int, samples: int, prompt: list[int]) -> Transcript:
        max_new = int(samples / 16000 * _TOKENS_PER_SECOND) + 12
        result = self._model.model.generate(
            encoded, [prompt], beam_size=1, return_scores=True,
            return_no_speech_prob=True, max_length=len(prompt) + max_new,
            suppress_blank=True, suppress_tokens=[-1])[0]
        tokens = result.sequences_ids[0]
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1) if tokens else -10.0
        # The short window's own failure, starting the utterance over, is cut off here; a
        # loop is left for transcribe() to decode again on the full window.
        return Transcript(trim_restart(self._tokenizer.decode(tokens).strip()),
                          result.no_speech_prob, avg_logprob, frames * 10)
