"""When the caller has finished their turn (pure).

People pause inside sentences and between them; a fixed silence ends turns in those pauses.
TOM asks Smart Turn (an audio model of whether a turn sounds complete) once the caller has
been silent for ``ask_after_ms``, and Whisper transcribes the same audio speculatively at the
same moment. The turn ends as soon as the model says complete and the words do not stop on
one that cannot end a sentence ("for a", "und", "um"). Otherwise TOM keeps listening and asks
again every ``ask_every_ms`` (the model grows surer with silence), and ends the turn anyway
after ``max_silence_ms``. Answering at once when both agree pays for the long wait when
they do not.
"""

from __future__ import annotations

import dataclasses
import enum
import re


class Step(enum.Enum):
    LISTEN = "listen"
    ASK = "ask"          # ask the model (and start the speculative answer on the first ask)
    END = "end"          # the turn is over


@dataclasses.dataclass(frozen=True)
class Policy:
    ask_after_ms: int
    ask_every_ms: int
    max_silence_ms: int
    complete_threshold: float


@dataclasses.dataclass(frozen=True)
class Evidence:
    asks: int = 0                    # asks made in this silence, the pending one included
    pending: bool = False            # an ask is still being answered
    probability: float | None = None  # the latest answer: how sure the model is it is complete
    text: str | None = None          # the speculative transcript; None until Whisper is done
    #                                  (or when it heard no believable words)


# Words a sentence does not end on: articles, possessives, conjunctions and hesitations.
_NEVER_LAST = {
    "en": {"a", "an", "the", "my", "your", "our", "their", "his", "her", "its", "and", "or",
           "but", "because", "so", "if", "that", "than", "um", "uh", "er", "erm", "uhm",
           "hmm", "like",
           # a contraction's end (I'm, we're, I've, we'll): a subject and its verb, with
           # what they say still to come
           "m", "re", "ve", "ll"},
    "de": {"der", "die", "das", "den", "dem", "des", "ein", "eine", "einen", "einem", "einer",
           "mein", "meine", "meinen", "meinem", "meiner", "ihr", "ihre", "ihren", "unser",
           "unsere", "und", "oder", "aber", "weil", "dass", "wenn", "ob", "als", "äh", "ähm",
           "öh", "hm", "also"},
}
# A preposition ends an English sentence only in a question about what or whom ("What is it
# for?"); Whisper writes "?" after a broken-off question too, so that mark says nothing.
# German prepositions that double as verb particles ("Wann machen Sie auf?") are left out.
_PREPOSITIONS = {
    "en": {"for", "to", "of", "with", "in", "on", "at", "from", "about", "by", "into"},
    "de": {"für", "von", "bei", "zum", "zur", "im", "am", "vom", "über"},
}
_STRANDING = {"en": {"what", "which", "who", "whom", "where"}, "de": set()}
# Numbers are words here: "a Civic from 2015." ends on the year, not on "from".
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def unfinished(text: str, language: str) -> bool:
    """True when the words stop where no sentence ends: on a dangling word or a comma.
    (Whisper's trailing "..." says nothing: it writes it after finished sentences too.)"""
    stripped = text.strip()
    words = _WORD.findall(stripped.lower())
    if not words:
        return False
    if stripped.endswith((",", "-")):
        return True
    last = words[-1]
    if last in _NEVER_LAST.get(language, _NEVER_LAST["en"]):
        return True
    stranding = _STRANDING.get(language, _STRANDING["en"])
    return last in _PREPOSITIONS.get(language, _PREPOSITIONS["en"]) and \
        not stranding.intersection(words)


def said_all(policy: Policy, evidence: Evidence, language: str) -> bool:
    """The model is sure the turn sounds complete, and the words agree."""
    return evidence.probability is not None and \
        evidence.probability >= policy.complete_threshold and \
        evidence.text is not None and not unfinished(evidence.text, language)


def next_step(policy: Policy, silence_ms: float, evidence: Evidence, language: str) -> Step:
    if silence_ms >= policy.max_silence_ms:
        return Step.END
    if silence_ms < policy.ask_after_ms:
        # A sound again before the VAD has heard speech: the caller may be going on, and
        # the model's answer is about a silence that has just ended.
        return Step.LISTEN
    if said_all(policy, evidence, language):
        return Step.END
    words_unfinished = evidence.text is not None and unfinished(evidence.text, language)
    due = policy.ask_after_ms + evidence.asks * policy.ask_every_ms
    # Unfinished words stay unfinished however often the model is asked.
    model_unsure = evidence.probability is None or evidence.probability < policy.complete_threshold
    if not evidence.pending and silence_ms >= due and model_unsure and not words_unfinished:
        return Step.ASK
    return Step.LISTEN
