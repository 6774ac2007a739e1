"""A call's reward in [0, 1] from what happened in it (pure).

A caller's rating, when they gave one, says most; what they did says the rest: hanging up
while TOM talked, asking for a person, turns TOM could not answer, interrupting TOM's
answers, being asked whether they are still there, a call that ended in a hand-over or
after a few seconds. Each of those takes its weight off a perfect 1.0; the rating, mapped
from 1–5 to 0–1, is mixed in with ``rating_weight``. Examples with the default weights are
in the README ("Learning from callers").
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Signals:
    """What one call's record says; no words, no number."""

    rating: int | None = None          # 1–5 on the keypad; thumbs up 5, down 1
    hung_up_on_tom: bool = False       # the caller hung up while TOM was speaking
    asked_for_person: bool = False
    fallback_turns: int = 0
    barge_ins: int = 0
    answers: int = 0
    reprompts: int = 0
    duration_s: float = 0.0
    transferred: bool = False


@dataclasses.dataclass(frozen=True)
class Weights:
    rating: float = 0.7                 # share of the reward a rating decides
    hung_up_on_tom: float = 0.3
    asked_for_person: float = 0.3
    fallback_turn: float = 0.15         # per turn, up to three
    barge_in_rate: float = 0.2          # times barge-ins per answer (at most 1)
    reprompt: float = 0.1               # per re-prompt, up to two
    transferred: float = 0.2
    short_call: float = 0.1             # a call shorter than short_call_s
    short_call_s: float = 15.0


def implicit(signals: Signals, weights: Weights) -> float:
    """What the call's course says, in [0, 1]."""
    lost = 0.0
    lost += weights.hung_up_on_tom * signals.hung_up_on_tom
    lost += weights.asked_for_person * signals.asked_for_person
    lost += weights.fallback_turn * min(signals.fallback_turns, 3)
    if signals.answers:
        lost += weights.barge_in_rate * min(1.0, signals.barge_ins / signals.answers)
    lost += weights.reprompt * min(signals.reprompts, 2)
    lost += weights.transferred * signals.transferred
    lost += weights.short_call * (signals.duration_s < weights.short_call_s)
    return min(1.0, max(0.0, 1.0 - lost))


def reward(signals: Signals, weights: Weights) -> float:
    course = implicit(signals, weights)
    if signals.rating is None:
        return round(course, 4)
    rating = (min(5, max(1, signals.rating)) - 1) / 4
    return round(weights.rating * rating + (1 - weights.rating) * course, 4)
