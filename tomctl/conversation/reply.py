"""One answer TOM is giving: interruptible, and it knows what the caller actually heard."""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

from tomctl.audio.sink import AudioSink
from tomctl.speech.offload import StopFlag


@dataclasses.dataclass
class Spoken:
    text: str
    start: int   # sink frame index of its first frame
    end: int     # one past its last frame


def heard_text(spoken: Sequence[Spoken], position: int) -> str:
    """The words the caller heard when playback reached frame ``position`` (pure).

    A sentence cut off part-way contributes the share of its words that was played.
    """
    words: list[str] = []
    for piece in spoken:
        if position >= piece.end:
            words += piece.text.split()
        elif position > piece.start:
            piece_words = piece.text.split()
            share = (position - piece.start) / (piece.end - piece.start)
            words += piece_words[:int(len(piece_words) * share)]
            break
        else:
            break
    return " ".join(words)


class Reply:
    def __init__(self, sink: AudioSink, given_up: Callable[[], None] = lambda: None) -> None:
        """``given_up`` is called once the reply has stopped: its queued work can go."""
        self._sink = sink
        self._given_up = given_up
        self.stop = StopFlag()
        self.spoken: list[Spoken] = []
        self.interrupted_at: int | None = None   # sink position when the caller barged in
        self.history_entry: dict[str, str] | None = None
        self.utterance_audio: np.ndarray | None = None  # what the caller said, for a restart
        self.turn = None                 # the caller's turn it answers (None: a set phrase)
        self.superseded = False          # the caller went on: answered anew with what follows
        self.first_heard_at: float | None = None   # when its first frame left for the caller
        self.provisional = None          # the verdict a speculative turn's audio waits for
        self.transcript_published = False
        self.heard_text: str | None = None  # what Whisper heard the caller say, once known
        self.holding_phrase = False      # "one moment, please" was played while it was late

    def speak(self, text: str, frames: Sequence[bytes]) -> int:
        """Queue a sentence; returns the sink index of its first frame."""
        start = self._sink.frames_queued
        self.spoken.append(Spoken(text, start, start + len(frames)))
        self._sink.play(frames)
        return start

    @property
    def started(self) -> bool:
        return bool(self.spoken)

    @property
    def heard(self) -> bool:
        """Has its first frame left for the caller? Until then it can go unheard."""
        return self.started and self._sink.position > self.spoken[0].start

    @property
    def playing(self) -> bool:
        return self.started and self.interrupted_at is None and \
            self._sink.position < self.spoken[-1].end

    def cancel(self) -> None:
        """Stop producing; nothing was played yet, so nothing is cleared."""
        self.stop.set()
        self._given_up()

    def interrupt(self) -> None:
        """The caller barged in: stop producing, drop what is queued, remember what was heard."""
        self.stop.set()
        self._given_up()
        self.interrupted_at = self._sink.position
        self._sink.clear()
        if self.history_entry is not None:
            self.history_entry["content"] = self.text()

    def text(self) -> str:
        """What the caller heard (all of it unless interrupted)."""
        if self.interrupted_at is None:
            return " ".join(piece.text for piece in self.spoken)
        return heard_text(self.spoken, self.interrupted_at)
