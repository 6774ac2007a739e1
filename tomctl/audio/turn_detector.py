"""Speech detection: a small state machine over VAD scores (pure, audio-time based).

    QUIET ──speech──▶ STARTING ──speech ≥ start──▶ SPEAKING ──silence──▶ STOPPING
      ▲                  │ silence                     ▲                    │
      └──────────────────┘                             └──────speech────────┤
      ◀──── end_turn(), or silence ≥ TOM_TURN_MAX_SILENCE_MS: utterance ends ─┘

When, inside that silence, the turn is over is decided elsewhere (conversation/end_of_turn.py:
the end-of-turn model and the words), which calls :meth:`end_turn`.

Time is counted in audio (chunks of 32 ms), never read from a clock, so tests run instantly.
A pre-roll ring keeps the audio from just before speech started: the first syllable is kept
even though the VAD needs a chunk or two to be sure. A false start (a chunk or two of speech,
then not) keeps everything since its pre-roll until the line has been quiet for a pre-roll's
length: a VAD that flickers over a caller's soft first words ("Where is ...") for longer
than the pre-roll must not push them out of it.
"""

from __future__ import annotations

import collections
import dataclasses
import enum

import numpy as np

from tomctl.config import TurnSettings

# Hysteresis: once speaking, a chunk counts as silence only clearly below the threshold.
_RELEASE_MARGIN = 0.15
# After a false start, soft speech scores well under the threshold (Silero gives "Where is"
# on a phone line 0.2 to 0.45) but far over silence (under 0.05): only a chunk under a third
# of the threshold counts as the line settling. Kept for at most FALSE_START_MAX_MS.
_SETTLED_SHARE = 1 / 3
FALSE_START_MAX_MS = 2000


class SpeechState(enum.Enum):
    QUIET = "quiet"
    STARTING = "starting"
    SPEAKING = "speaking"
    STOPPING = "stopping"


@dataclasses.dataclass(frozen=True)
class SpeechStarted:
    pass


@dataclasses.dataclass(frozen=True)
class UtteranceEnded:
    audio: np.ndarray        # 16 kHz float32, pre-roll included
    speech_ms: int           # voiced audio in it
    cut: bool                # ended by the maximum utterance length, not by silence


@dataclasses.dataclass(frozen=True)
class NoiseDiscarded:
    speech_ms: int


Event = SpeechStarted | UtteranceEnded | NoiseDiscarded


class TurnDetector:
    def __init__(self, settings: TurnSettings, chunk_ms: int) -> None:
        self._settings = settings
        self._chunk_ms = chunk_ms
        self._preroll: collections.deque[np.ndarray] = collections.deque(
            maxlen=max(1, settings.preroll_ms // chunk_ms))
        self._utterance: list[np.ndarray] = []
        self._false_start: list[np.ndarray] = []   # audio since a false start's pre-roll
        self._quiet_chunks = 0                      # settled chunks in a row since then
        self._settled_below = settings.vad_threshold * _SETTLED_SHARE
        self.state = SpeechState.QUIET
        self.speech_ms = 0          # voiced audio in the current utterance
        self._silence_ms = 0

    def push(self, probability: float, chunk: np.ndarray) -> list[Event]:
        speech = probability >= self._settings.vad_threshold
        held = probability >= self._settings.vad_threshold - _RELEASE_MARGIN
        if self.state is SpeechState.QUIET:
            if not speech:
                self._keep_before_speech(chunk, probability < self._settled_below)
                return []
            self._begin(chunk)
            return self._confirm_start()
        self._utterance.append(chunk)
        if self.state is SpeechState.STARTING:
            if not speech:
                self._abandon()
                return []
            self.speech_ms += self._chunk_ms
            return self._confirm_start()
        if self.state is SpeechState.SPEAKING:
            if held:
                self.speech_ms += self._chunk_ms if speech else 0
            else:
                self.state, self._silence_ms = SpeechState.STOPPING, self._chunk_ms
        elif speech:  # STOPPING, and the caller goes on
            self.state, self._silence_ms = SpeechState.SPEAKING, 0
            self.speech_ms += self._chunk_ms
        else:
            self._silence_ms += self._chunk_ms
            if self._silence_ms >= self._settings.max_silence_ms:
                return [self._finish(cut=False)]
        if self._utterance_ms() >= self._settings.max_utterance_ms:
            return [self._finish(cut=True)]
        return []

    def end_turn(self) -> list[Event]:
        """The caller has finished: end the utterance now (only while STOPPING)."""
        if self.state is not SpeechState.STOPPING:
            return []
        return [self._finish(cut=False)]

    @property
    def silence_ms(self) -> int:
        """Silence since the caller stopped speaking (only in STOPPING)."""
        return self._silence_ms if self.state is SpeechState.STOPPING else 0

    def audio_so_far(self) -> np.ndarray:
        """The current utterance's audio, pre-roll included."""
        return np.concatenate(self._utterance) if self._utterance else np.zeros(0, np.float32)

    def _utterance_ms(self) -> int:
        return len(self._utterance) * self._chunk_ms

    def _keep_before_speech(self, chunk: np.ndarray, settled: bool) -> None:
        if not self._false_start:
            self._preroll.append(chunk)
            return
        self._false_start.append(chunk)
        self._quiet_chunks = self._quiet_chunks + 1 if settled else 0
        too_long = len(self._false_start) * self._chunk_ms >= FALSE_START_MAX_MS
        if self._quiet_chunks >= self._preroll.maxlen or too_long:
            self._preroll.extend(self._false_start)      # the line settled: back to a ring
            self._false_start = []

    def _begin(self, chunk: np.ndarray) -> None:
        self._utterance = (self._false_start or list(self._preroll)) + [chunk]
        self._preroll.clear()
        self._false_start = []
        self.state, self.speech_ms, self._silence_ms = SpeechState.STARTING, self._chunk_ms, 0

    def _confirm_start(self) -> list[Event]:
        if self.speech_ms < self._settings.speech_start_ms:
            return []
        self.state = SpeechState.SPEAKING
        return [SpeechStarted()]

    def _abandon(self) -> None:
        self._false_start, self._quiet_chunks = self._utterance, 0
        self._reset()

    def _finish(self, cut: bool) -> Event:
        speech_ms, audio = self.speech_ms, np.concatenate(self._utterance)
        self._reset()
        if speech_ms < self._settings.min_utterance_ms:
            return NoiseDiscarded(speech_ms)
        return UtteranceEnded(audio, speech_ms, cut)

    def _reset(self) -> None:
        self._utterance = []
        self.state, self.speech_ms, self._silence_ms = SpeechState.QUIET, 0, 0
