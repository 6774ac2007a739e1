"""What to do when the caller makes a sound while TOM thinks or speaks (pure).

TOM holds its audio the moment the VAD hears the caller start (the barge-in latency the
caller notices). Speech of TOM_BARGE_IN_SURE_MS interrupts it at once. Shorter speech of at
least TOM_BARGE_IN_MIN_SPEECH_MS keeps TOM holding until Whisper has heard what it was: a
listening word ("mhm", "okay", "ja genau") lets TOM carry on where it stopped, anything else
("no", "stop", "wait") interrupts it. Noise shorter than that only pauses TOM briefly.
An answer the caller has not heard a word of yet waits while they make a sound, and is
dropped for the whole turn (a restart) once that sound is speech.
"""

from __future__ import annotations

import enum
import re

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
           min_speech_ms: int, quiet_ms: int = 0, resume_after_ms: int = 0,
           sure_ms: int | None = None, checking: bool = False,
           soft_quiet_ms: int | None = None) -> Action:
    """``quiet_ms``: audio since the last sign of the caller's voice (a loud frame, a chunk
    the VAD scores as likely speech, or the turn detector hearing speech); 0 means a sign in
    this very frame. Holding on a sign is cheap; TOM resumes once the line has been quiet for
    ``resume_after_ms``, so a hold does not flicker on and off between syllables.
    ``sure_ms`` (default ``min_speech_ms``): speech that interrupts TOM whatever it says;
    ``checking``: Whisper is hearing what shorter speech said, and TOM keeps holding.
    ``soft_quiet_ms``: audio since a sign or a soft frame (audio/energy.py), when no voice of
    TOM's plays whose echo could be one (None otherwise). Only an answer not heard yet waits
    on it: a caller going on with "F…" or a breath is soft for 60–100 ms before a sign."""
    sure_ms = min_speech_ms if sure_ms is None else sure_ms
    if phase is ReplyPhase.THINKING and soft_quiet_ms is not None:
        quiet_ms = min(quiet_ms, soft_quiet_ms)
    talking = quiet_ms == 0 or speech is not SpeechState.QUIET
    if phase is ReplyPhase.IDLE:
        return Action.RESUME if held else Action.NONE
    if phase is ReplyPhase.THINKING:
        if speech is not SpeechState.QUIET and speech_ms >= min_speech_ms:
            return Action.RESTART
        # The caller may be going on after a pause: TOM's first word waits until it is
        # quiet again, rather than being heard over them and cut off a moment later.
        if talking:
            return Action.NONE if held else Action.HOLD
        return Action.RESUME if held and quiet_ms >= resume_after_ms else Action.NONE
    if speech is not SpeechState.QUIET and speech_ms >= sure_ms:
        return Action.BARGE_IN
    # Words, perhaps: hold on until they are known.
    word_long = speech is not SpeechState.QUIET and speech_ms >= min_speech_ms
    if talking or checking or word_long:
        return Action.NONE if held else Action.HOLD
    return Action.RESUME if held and quiet_ms >= resume_after_ms else Action.NONE


# What listeners say to show they are listening, not to take the turn.
_BACKCHANNEL = {
    "en": {"mhm", "mm", "hmm", "hm", "uh", "huh", "uhhuh", "mmhmm", "okay", "ok", "yeah",
           "yes", "yep", "right", "sure", "alright", "i", "see", "got", "it", "cool", "good",
           "great", "fine", "oh", "ah", "aha"},
    "de": {"mhm", "hm", "hmm", "ja", "jaja", "okay", "ok", "genau", "gut", "alles", "klar",
           "richtig", "stimmt", "aha", "ach", "so", "super", "prima", "verstehe", "ah", "oh"},
}
# Words that ask for nothing on their own: a caller who says only these over TOM's voice
# ("I have", "I do", "it is") and stops has not taken the turn (tiny.en also hears Piper's
# "uh huh" as "I have", sure of it). One who goes on speaks past TOM_BARGE_IN_SURE_MS and
# interrupts; either way the words are kept for their next turn. Negations and question
# words are not among them: "no", "what?" interrupt; nor are the words that open a turn
# ("well", "so", "and", "also"), or a misheard "Wait," would be let pass.
_ASK_NOTHING = {
    "en": {"i", "you", "we", "he", "she", "they", "it", "me", "have", "has", "had", "do",
           "did", "am", "is", "are", "was", "the", "a", "an"},
    "de": {"ich", "du", "wir", "es", "habe", "hab", "hat", "bin", "ist", "das"},
}
# Everything that, said over TOM's voice alone, does not take the turn.
_NOT_A_TURN = {language: _BACKCHANNEL[language] | _ASK_NOTHING[language]
               for language in _BACKCHANNEL}
_BACKCHANNEL_WORDS = 3
# However Whisper spells a hum: "Mmmmm", "Hmmm", "Mhmm", "Uhh", "Ahh".
_HUM = re.compile(r"[mh]+|u+h+|a+h+|o+h+")


# A caller who starts speaking this soon after TOM's first word reached them cannot have been
# answering it (a listener needs longer to react): they were going on with their turn.
GOING_ON_S = 0.4
# Nor can one who speaks again this soon after their own last sound: they paused inside what
# they were saying, and TOM, whose answer came within the pause, ended their turn too early.
# (TOM's mark of that sound is up to 0.2 s early, the noise floor having risen with their
# voice: a 0.6 s pause measures 0.79 s.)
PAUSED_S = 1.0


def went_on(began_at: float, turn_end_at: float, first_heard_at: float | None,
            max_silence_s: float) -> bool:
    """Did the caller, who began speaking at ``began_at``, go on with the turn that ended at
    ``turn_end_at`` (their last sound) and whose answer first reached them at
    ``first_heard_at`` (None: not yet)? Their earlier words and these are then one turn,
    answered as a whole."""
    paused_s = began_at - turn_end_at
    heard_for = began_at - first_heard_at if first_heard_at is not None else 0.0
    return paused_s <= max_silence_s and (heard_for <= GOING_ON_S or paused_s <= PAUSED_S)


def is_backchannel(text: str, language: str) -> bool:
    """True for a few listening words ("mhm", "okay, yeah", "ja genau"), words that ask for
    nothing ("I have"), or none at all: a sound under TOM's voice that should not cut it off
    (pure)."""
    words = re.findall(r"[^\W\d_]+", text.lower().replace("-", ""))
    known = _NOT_A_TURN.get(language, _NOT_A_TURN["en"])
    return len(words) <= _BACKCHANNEL_WORDS and all(
        word in known or _HUM.fullmatch(word) for word in words)
