"""Which variant a call gets: Thompson sampling over Beta posteriors, behind a deploy guard
(pure: the random source is an argument, so tests and replays are deterministic).

A call's reward is a fraction in [0, 1], not a win or a loss, so the posterior is a Beta
with fractional updates: a reward r adds r to alpha and 1 - r to beta (Agrawal and Goyal's
Bernoulli trick in expectation, without the coin flip, which only adds noise). The mean is
the expected reward; the spread narrows with every call.

Thompson sampling chooses a variant with the probability that it is the best under the
posteriors. That probability is computed (by drawing from the posteriors) instead of
drawing once, so that every choice has a known propensity for offline evaluation, and so
that the guard can bound it:
- a *new* variant (fewer than ``min_calls`` calls while another variant has that many)
  gets at most ``new_share`` of the calls;
- every active variant gets at least ``exploration / active variants``, so a variant that
  had bad luck early can recover, and one with fewer than ``young_calls`` calls an equal
  share (within its cap), so that it is judged soon: a bad variant would otherwise be
  starved of the very calls that prove it bad, and linger;
- a variant whose posterior says, with probability ``confidence``, that it is worse than
  the best by more than ``margin`` is blacklisted, once it has ``judge_after`` calls;
- the operator can pause a variant (no calls), resume it, or pin one (all calls).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Sequence

import numpy as np

ACTIVE, PAUSED, BLACKLISTED = "active", "paused", "blacklisted"
DRAWS = 4000


@dataclasses.dataclass
class Arm:
    id: str
    alpha: float = 1.0
    beta: float = 1.0
    calls: int = 0
    state: str = ACTIVE

    def update(self, reward: float) -> None:
        reward = min(1.0, max(0.0, reward))
        self.alpha += reward
        self.beta += 1.0 - reward
        self.calls += 1

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    def interval(self) -> tuple[float, float]:
        """A 95 % credible interval (the Beta's normal approximation, clipped to [0, 1])."""
        total = self.alpha + self.beta
        spread = 1.96 * math.sqrt(self.alpha * self.beta / (total * total * (total + 1)))
        return max(0.0, self.mean - spread), min(1.0, self.mean + spread)


@dataclasses.dataclass(frozen=True)
class Guard:
    new_share: float = 0.1
    min_calls: int = 20
    exploration: float = 0.05
    margin: float = 0.05
    confidence: float = 0.95
    judge_after: int = 10
    young_calls: int = 20


@dataclasses.dataclass(frozen=True)
class Decision:
    variant: str
    action: str        # blacklist
    reason: str


def samples(arms: Sequence[Arm], rng: np.random.Generator, draws: int = DRAWS) -> np.ndarray:
    return rng.beta([a.alpha for a in arms], [a.beta for a in arms], size=(draws, len(arms)))


def p_best(arms: Sequence[Arm], rng: np.random.Generator) -> dict[str, float]:
    if not arms:
        return {}
    drawn = samples(arms, rng)
    wins = np.bincount(np.argmax(drawn, axis=1), minlength=len(arms))
    return {arm.id: float(count) / len(drawn) for arm, count in zip(arms, wins)}


def is_new(arm: Arm, arms: Iterable[Arm], guard: Guard) -> bool:
    return arm.calls < guard.min_calls and any(
        other.calls >= guard.min_calls for other in arms
        if other.id != arm.id and other.state == ACTIVE)


def shares(arms: Sequence[Arm], guard: Guard, rng: np.random.Generator,
           pinned: str = "") -> dict[str, float]:
    """Each variant's probability of being chosen for the next call."""
    active = [arm for arm in arms if arm.state == ACTIVE]
    result = {arm.id: 0.0 for arm in arms}
    if not active:
        return result
    if pinned in {arm.id for arm in active}:
        result[pinned] = 1.0
        return result
    best = p_best(active, rng)
    caps = {arm.id: guard.new_share if is_new(arm, active, guard) else 1.0 for arm in active}
    floors = {arm.id: min(caps[arm.id], 1.0 / len(active) if arm.calls < guard.young_calls
                          else guard.exploration / len(active)) for arm in active}
    result.update(_bounded(best, floors, caps))
    return result


def _bounded(wanted: dict[str, float], floors: dict[str, float],
             caps: dict[str, float]) -> dict[str, float]:
    """``wanted`` rescaled to sum to 1 with every value in [floor, cap]: values pushed out of
    bounds are fixed there, and the rest share what is left in their proportions."""
    fixed: dict[str, float] = {}
    while True:
        free = [key for key in wanted if key not in fixed]
        left = 1.0 - sum(fixed.values())
        if not free:
            break
        weight = sum(wanted[key] for key in free)
        scaled = {key: (left * wanted[key] / weight if weight > 0 else left / len(free))
                  for key in free}
        changed = False
        for key, value in scaled.items():
            low, high = floors[key], caps[key]
            if value > high + 1e-12 or value < low - 1e-12:
                fixed[key] = high if value > high else low
                changed = True
        if not changed:
            fixed.update(scaled)
            break
    total = sum(fixed.values())
    return {key: value / total for key, value in fixed.items()} if total > 0 else fixed


def choose(chances: dict[str, float], rng: np.random.Generator) -> tuple[str, float]:
    """A variant drawn with its share; returns it with that share, its propensity."""
    ids = sorted(key for key, value in chances.items() if value > 0)
    if not ids:
        raise ValueError("no variant can be chosen: every one is paused or blacklisted")
    weights = np.array([chances[key] for key in ids])
    index = int(rng.choice(len(ids), p=weights / weights.sum()))
    return ids[index], float(chances[ids[index]])


def judge(arms: Sequence[Arm], guard: Guard, rng: np.random.Generator) -> list[Decision]:
    """Blacklist decisions for active variants that are surely worse than the best: in at
    least ``confidence`` of the posterior draws, the best of the others beats it by more
    than ``margin`` (the best is not known either, so it is drawn too)."""
    judged = [arm for arm in arms if arm.state == ACTIVE and arm.calls >= guard.judge_after]
    if len(judged) < 2:
        return []
    drawn = samples(judged, rng)
    leader = max(judged, key=lambda arm: arm.mean)
    decisions = []
    for index, arm in enumerate(judged):
        others = np.max(np.delete(drawn, index, axis=1), axis=1)
        worse = float(np.mean(others - drawn[:, index] > guard.margin))
        if worse >= guard.confidence:
            decisions.append(Decision(arm.id, BLACKLISTED, (
                f"worse than the best ({leader.id}, mean {leader.mean:.3f}) by more than "
                f"{guard.margin:g} with probability {worse:.3f} (mean {arm.mean:.3f}, "
                f"{arm.calls} calls)")))
    return decisions
