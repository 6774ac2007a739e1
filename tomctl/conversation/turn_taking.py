"""What to do when the caller makes a sound while TOM thinks or speaks (pure).

TOM holds its audio the moment the VAD hears the caller start (the barge-in latency the
caller notices), and only throws the answer away once the caller has spoken for
TOM_BARGE_IN_MIN_SPEECH_MS. Noise or a short "mhm" therefore pauses TOM briefly and it
carries on where it stopped, losing nothing.
"""

from __future__ import annotations

import enum

from tomctl.audio.turn_detector import SpeechState


class ReplyPhase(enum.Enum):
    IDLE = "idle"            # no answer pending or playing
    THINKING = "thinking"    # an answer is being prepared, nothing played yet
    SPEAKING = "speaking"    # answer audio is queued or playing


class Action(enum.Enum):
    NONE = "none"
    HOLD = "hold"            # pause TOM's audio, keep it queued
    RESUME = "resume"        # it was noise: carry on
    BARGE_IN = "barge_in"    # the caller is really talking: drop TOM's answer
    RESTART = "restart"      # the caller went on before TOM said anything: answer it all at once


def decide(phase: ReplyPhase, speech: SpeechState, speech_ms: int, held: bool,
           min_speech_ms: int, hearing: bool = False) -> Action:
    """``hearing``: the latest chunk sounds like speech, though the turn detector has not
    (yet) counted it as such. Holding on it is cheap and undone on the next quiet chunk, and
    it takes a chunk off the time the caller hears TOM talk over them."""
    if phase is ReplyPhase.IDLE:
        return Action.RESUME if held else Action.NONE
    talking = speech is not SpeechState.QUIET or hearing
    if phase is ReplyPhase.THINKING:
        return Action.RESTART if talking and speech_ms >= min_speech_ms else Action.NONE
    if not talking:
        return Action.RESUME if held else Action.NONE
    if speech_ms >= min_speech_ms:
        return Action.BARGE_IN
    return Action.NONE if held else Action.HOLD
