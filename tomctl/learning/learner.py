"""The running service's side of learning: a variant for each new call, a reward for each
finished one, the deploy guard's decisions and the operator's, all kept in the call store
so that a restart rebuilds the same state.

Only the hub's greenlets call it; store reads and writes go through the store's own thread.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any, Callable

import gevent
import numpy as np

from tomctl.errors import ConfigError
from tomctl.learning import bandit, evaluation, variants as variants_file
from tomctl.learning.bandit import ACTIVE, BLACKLISTED, PAUSED, Arm
from tomctl.learning.reward import Signals, Weights, reward
from tomctl.learning.variants import Variant
from tomctl.logs import event

log = logging.getLogger(__name__)


def weights_from(settings: Any) -> Weights:
    return Weights(rating=settings.reward_rating, hung_up_on_tom=settings.reward_hangup,
                   asked_for_person=settings.reward_person,
                   fallback_turn=settings.reward_fallback, barge_in_rate=settings.reward_barge_in,
                   reprompt=settings.reward_reprompt, transferred=settings.reward_transfer,
                   short_call=settings.reward_short_call,
                   short_call_s=settings.reward_short_call_s)


def guard_from(settings: Any) -> bandit.Guard:
    return bandit.Guard(new_share=settings.new_share, min_calls=settings.min_calls,
                        exploration=settings.exploration, margin=settings.blacklist_margin)


class Learner:
    def __init__(self, settings: Any, persona: Any, store: Any, metrics: Any,
                 rng: np.random.Generator | None = None) -> None:
        self._settings = settings          # LearningSettings
        self._persona = persona            # PersonaSettings, for the variants' templates
        self._store = store
        self._metrics = metrics
        self._rng = rng if rng is not None else np.random.default_rng()
        self._weights = weights_from(settings)
        self._guard = guard_from(settings)
        self.variants: dict[str, Variant] = {}
        self.arms: dict[str, Arm] = {}
        self.pinned = ""

    # -- state --------------------------------------------------------------------------------

    def load(self) -> tuple[Variant, ...]:
        return variants_file.load(self._settings.variants_file, self._persona)

    def start(self, loaded: tuple[Variant, ...] | None = None) -> None:
        """Take the variants (loaded from the file if not given) and rebuild every
        posterior from the store."""
        loaded = self.load() if loaded is None else loaded
        calls, states = self._store.learning_log()
        self._rebuild(loaded, [(call["variant"], call["reward"]) for call in calls], states)

    def _rebuild(self, loaded: tuple[Variant, ...], scored: list[tuple[str, float]],
                 states: list[dict]) -> None:
        self.variants = {v.id: v for v in loaded}
        arms = {ident: Arm(ident) for ident in self.variants}
        for ident, score in scored:
            if ident in arms:                   # a variant since removed from the file: gone
                arms[ident].update(score)
        self.pinned = ""
        for row in states:
            if row["variant"] in arms:
                arms[row["variant"]].state = row["state"]
                if row["pinned"]:
                    self.pinned = row["variant"]
        self.arms = arms
        self._export()
        event(log, "variants_loaded", variants=sorted(arms), pinned=self.pinned or None,
              scored_calls=len(scored))

    def reload(self, prepare: Callable[[tuple[Variant, ...]], None] = lambda loaded: None
               ) -> None:
        """SIGHUP: the file again, the state again; running calls keep their variant.
        ``prepare`` readies what new calls will need (their greetings) before any call can
        be given one of the new variants."""
        try:
            loaded = self.load()
        except ConfigError as exc:       # a broken edit must not stop a running service
            event(log, "variants_reload_failed", level=logging.ERROR, error=str(exc))
            return
        prepare(loaded)
        self.start(loaded)

    # -- calls --------------------------------------------------------------------------------

    def choose(self) -> tuple[Variant, dict[str, float]]:
        arms = list(self.arms.values())
        chances = bandit.shares(arms, self._guard, self._rng, self.pinned)
        try:
            ident, propensity = bandit.choose(chances, self._rng)
        except ValueError:               # everything paused or blacklisted: the base serves
            ident = variants_file.BASE if variants_file.BASE in self.variants \
                else next(iter(self.variants))
            chances = {key: float(key == ident) for key in self.arms}
            event(log, "variant_fallback", level=logging.WARNING, variant=ident,
                  why="no variant is active")
        self._metrics.variant_selected.labels(variant=ident).inc()
        exploring = 1.0 - max(chances.values())
        self._metrics.exploration.set(exploring)
        return self.variants[ident], chances

    def finished(self, call_id: str, ident: str, signals: Signals) -> float:
        """Score a finished call, update its variant's posterior, let the guard judge."""
        score = reward(signals, self._weights)
        self._store.call_scored(call_id, dataclasses.asdict(signals), score)
        arm = self.arms.get(ident)
        if arm is None:                  # its variant left the file while it ran
            return score
        arm.update(score)
        self._metrics.reward.labels(variant=ident).set(round(arm.mean, 4))
        for decision in bandit.judge(list(self.arms.values()), self._guard, self._rng):
            self._set_state(decision.variant, BLACKLISTED, decision.reason)
        return score

    # -- the operator -------------------------------------------------------------------------

    def pause(self, ident: str) -> None:
        self._set_state(self._known(ident), PAUSED, "paused by the operator")

    def resume(self, ident: str) -> None:
        self._set_state(self._known(ident), ACTIVE, "resumed by the operator")

    def pin(self, ident: str) -> None:
        """Every call gets ``ident`` (an empty id lifts the pin)."""
        if ident:
            self._known(ident)
        for name, arm in self.arms.items():
            self._store.variant_state(name, arm.state, name == ident,
                                      f"pinned {ident}" if ident else "unpinned")
        self.pinned = ident
        event(log, "variant_pinned", variant=ident or None)

    def _known(self, ident: str) -> str:
        if ident not in self.arms:
            raise ConfigError(f"no variant {ident!r}; known: {', '.join(sorted(self.arms))}")
        return ident

    def _set_state(self, ident: str, state: str, reason: str) -> None:
        self.arms[ident].state = state
        self._store.variant_state(ident, state, ident == self.pinned, reason)
        self._export()
        event(log, "variant_state", variant=ident, state=state, reason=reason)

    def _export(self) -> None:
        self._metrics.blacklisted.set(sum(a.state == BLACKLISTED for a in self.arms.values()))
        for ident, arm in self.arms.items():
            self._metrics.reward.labels(variant=ident).set(round(arm.mean, 4))

    # -- offline: tomctl learn --------------------------------------------------------------

    def learn(self) -> dict:
        """Replay the logged calls: score each again with the current weights (stored),
        rebuild the posteriors from them (the same state however often it runs), and
        estimate each variant's reward from the logged shares (IPS). The replay runs in a
        worker thread: months of calls must not hold up the calls in progress."""
        calls, states = self._store.learning_log()
        rescored, log_entries = gevent.get_hub().threadpool.apply(
            _replay, (calls, self._weights))
        self._store.calls_rescored(rescored)
        self._rebuild(self.load(), [(e.variant, e.reward) for e in log_entries], states)
        estimates = {}
        for ident in self.arms:
            found = evaluation.estimate(log_entries, ident)
            estimates[ident] = {"calls": found.calls, "ips": round(found.ips, 4),
                                "ips_interval": [round(v, 4) for v in found.ips_interval],
                                "snips": round(found.snips, 4),
                                "snips_interval": [round(v, 4) for v in found.snips_interval]}
        event(log, "learned", calls=len(calls), rescored=len(rescored))
        return {"calls": len(calls), "rescored": len(rescored), "variants": self.table(),
                "estimates": estimates}

    # -- what tomctl variants shows -----------------------------------------------------------

    def table(self) -> list[dict]:
        arms = list(self.arms.values())
        chances = bandit.shares(arms, self._guard, self._rng, self.pinned)
        active = [arm for arm in arms if arm.state == ACTIVE]
        best = bandit.p_best(active, self._rng)
        rows = []
        for arm in arms:
            low, high = arm.interval()
            state = arm.state
            if state == ACTIVE and bandit.is_new(arm, active, self._guard):
                state = "new"
            rows.append({"variant": arm.id, "description": self.variants[arm.id].description,
                         "calls": arm.calls, "mean_reward": round(arm.mean, 3),
                         "interval": [round(low, 3), round(high, 3)],
                         "p_best": round(best.get(arm.id, 0.0), 3),
                         "share": round(chances.get(arm.id, 0.0), 3), "state": state,
                         "pinned": arm.id == self.pinned,
                         "overrides": self.variants[arm.id].overrides()})
        return rows


def _replay(calls: list[dict], weights: Weights) -> tuple[list[tuple[str, float]],
                                                           list[evaluation.Logged]]:
    """(calls whose reward the weights change, with the new one; the log to evaluate)."""
    rescored, entries = [], []
    for call in calls:
        score = call["reward"]
        if call["signals"]:
            score = reward(Signals(**json.loads(call["signals"])), weights)
            if abs(score - call["reward"]) > 1e-9:
                rescored.append((call["id"], score))
        shares = json.loads(call["shares"]) if call["shares"] else {call["variant"]: 1.0}
        entries.append(evaluation.Logged(call["variant"], shares, score))
    return rescored, entries
