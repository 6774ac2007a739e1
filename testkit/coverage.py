"""Which of the caller's words reached the transcription TOM answered: each word's audio,
found or not in the audio TOM gave Whisper for that turn.

Comparing two transcripts instead counts Whisper hearing the same words differently in two
cuts of the audio ("spark plugs" and "spark plug"); a word lost is one whose sound never
reached Whisper (the lone "Hello." before a pause, the first words before a restart).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from testkit.measure import AUDIBLE

# A word is found where its audible samples match the answered audio this closely
# (normalised cross-correlation: the same samples through two soxr resamplers match almost
# exactly, the same word said again elsewhere far less).
FOUND_CORRELATION = 0.8
RATE = 16000
# A word is looked for in 60 ms pieces: one that straddles the seam between two stretches TOM
# joined (a restarted turn's first part and the rest) is found piece by piece. It is lost
# when most of its audible pieces are not found.
_PIECE = int(0.06 * RATE)


@dataclasses.dataclass(frozen=True)
class Word:
    text: str
    start_s: float
    end_s: float


class WordClock:
    """Where each word of an utterance lies in time: faster-whisper's word timestamps, from
    its own copy of the model (loaded once)."""

    def __init__(self, model_dir: Path) -> None:
        from faster_whisper import WhisperModel
        self._model = WhisperModel(str(model_dir), device="cpu", compute_type="int8",
                                   cpu_threads=1)

    def words(self, audio_16k: np.ndarray) -> list[Word]:
        segments, _ = self._model.transcribe(audio_16k, language="en", beam_size=1,
                                             word_timestamps=True, vad_filter=False,
                                             condition_on_previous_text=False)
        return [Word(w.word.strip(), w.start, w.end) for s in segments for w in s.words or []]


def best_match(needle: np.ndarray, haystack: np.ndarray) -> float:
    """The highest normalised cross-correlation of ``needle`` anywhere in ``haystack``."""
    n = len(needle)
    if n == 0 or len(haystack) < n:
        return 0.0
    needle = needle - needle.mean()
    size = 1 << int(np.ceil(np.log2(len(haystack) + n)))
    products = np.fft.irfft(np.fft.rfft(haystack, size) * np.conj(np.fft.rfft(needle, size)),
                            size)[:len(haystack) - n + 1]
    sums = np.concatenate([[0.0], np.cumsum(haystack, dtype=np.float64)])
    squares = np.concatenate([[0.0], np.cumsum(np.square(haystack, dtype=np.float64))])
    window_sum = sums[n:] - sums[:-n]
    window_energy = squares[n:] - squares[:-n] - window_sum ** 2 / n
    norm = np.sqrt(np.maximum(window_energy, 1e-12) * float(np.dot(needle, needle)))
    return float(np.max(products / norm))


@dataclasses.dataclass(frozen=True)
class Coverage:
    lost: list[str]      # words whose sound is mostly missing
    missing_ms: int      # audible sound missing, in 60 ms pieces, lost words' or not


def coverage(said_16k: np.ndarray, words: list[Word],
             answered_16k: np.ndarray | None) -> Coverage:
    """Which words of ``said_16k`` (the caller's audio, timed by ``words``) are mostly
    nowhere in ``answered_16k``, the audio TOM transcribed. Both are 16 kHz: TOM resamples
    the line with the same soxr filter, so the sound it kept matches almost exactly."""
    if answered_16k is None or not len(answered_16k):
        answered_16k = np.zeros(0)
    answered = answered_16k.astype(np.float64)
    lost, missing = [], 0
    for word in words:
        chunk = said_16k[int(word.start_s * RATE):int(word.end_s * RATE)].astype(np.float64)
        pieces = [piece for piece in np.array_split(chunk, max(1, len(chunk) // _PIECE))
                  if len(piece) and np.sqrt(np.mean(np.square(piece))) > AUDIBLE]
        found = sum(best_match(piece, answered) >= FOUND_CORRELATION for piece in pieces)
        missing += len(pieces) - found
        if found * 2 < len(pieces):
            lost.append(word.text)
    return Coverage(lost, round(missing * _PIECE / RATE * 1000))
