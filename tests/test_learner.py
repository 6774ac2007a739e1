"""The service's learning state on a real SQLite store: a variant per call with its shares,
rewards, the guard's and the operator's decisions, and the same state after a restart."""

import dataclasses
import json
import time
from importlib import resources

import gevent
import numpy as np
import pytest

from tomctl import config
from tomctl.errors import ConfigError
from tomctl.learning.learner import Learner
from tomctl.learning.reward import Signals
from tomctl.metrics import Metrics
from tomctl.store.calls import CallStore

EXAMPLE = str(resources.files("tomctl.learning").joinpath("data", "variants.toml"))
GOOD = Signals(rating=5, duration_s=90, answers=3)
BAD = Signals(rating=1, hung_up_on_tom=True, asked_for_person=True, transferred=True,
              duration_s=8, answers=1)


class Service:
    """A store and a learner on one database file, as the service has them."""

    def __init__(self, path, **environ):
        settings = config.load({"TOM_VARIANTS_FILE": EXAMPLE, **environ})
        self.metrics = Metrics()
        self.store = CallStore(str(path), False, self.metrics)
        self.store.start()
        self.learner = Learner(settings.learning, settings.persona, self.store, self.metrics,
                               rng=np.random.default_rng(5))
        self.learner.start()
        self.calls = 0

    def call(self, signals_for):
        """One call: a variant chosen, logged with its shares, scored at its end (the hub
        runs other greenlets between calls, as it does between real ones)."""
        gevent.sleep(0)
        self.calls += 1
        call_id = f"call-{self.calls}-{time.monotonic_ns()}"
        self.store.call_started(call_id, "hash", time.time())
        variant, shares = self.learner.choose()
        self.store.call_variant(call_id, variant.id, shares)
        return variant.id, self.learner.finished(call_id, variant.id, signals_for(variant.id))

    def close(self):
        self.store.close()


def rows(service):
    return {row["variant"]: row for row in service.learner.table()}


def test_rewards_are_stored_with_the_choice_and_a_restart_rebuilds_the_same_state(tmp_path):
    service = Service(tmp_path / "calls.db")
    chosen = [service.call(lambda v: GOOD if v == "brief" else BAD) for _ in range(60)]
    before = {name: (row["calls"], row["mean_reward"]) for name, row in rows(service).items()}
    calls, _ = service.store.learning_log()
    assert len(calls) == 60
    assert all(set(json.loads(c["shares"])) == {"base", "brief", "patient"} for c in calls)
    assert [c["variant"] for c in calls] == [variant for variant, _ in chosen]
    assert json.loads(calls[0]["signals"])["rating"] in (1, 5)      # signals, no words
    service.close()

    again = Service(tmp_path / "calls.db")
    after = {name: (row["calls"], row["mean_reward"]) for name, row in rows(again).items()}
    assert after == before and sum(n for n, _ in after.values()) == 60
    assert rows(again)["brief"]["mean_reward"] > rows(again)["base"]["mean_reward"]
    again.close()


def test_the_guard_blacklists_a_bad_variant_and_the_decision_survives_a_restart(tmp_path):
    service = Service(tmp_path / "calls.db")
    for _ in range(120):
        service.call(lambda v: BAD if v == "patient" else GOOD)
    assert rows(service)["patient"]["state"] == "blacklisted"
    assert rows(service)["patient"]["share"] == 0
    assert service.metrics.registry.get_sample_value("tom_rl_blacklisted_variants") == 1
    service.close()
    again = Service(tmp_path / "calls.db")
    assert rows(again)["patient"]["state"] == "blacklisted"
    assert all(again.call(lambda v: GOOD)[0] != "patient" for _ in range(30))
    again.close()


def test_the_operator_pauses_resumes_and_pins(tmp_path):
    service = Service(tmp_path / "calls.db")
    service.learner.pause("base")
    assert rows(service)["base"]["state"] == "paused"
    assert {service.call(lambda v: GOOD)[0] for _ in range(20)} <= {"brief", "patient"}
    service.learner.pin("patient")
    assert {service.call(lambda v: GOOD)[0] for _ in range(10)} == {"patient"}
    service.close()
    again = Service(tmp_path / "calls.db")         # pins and pauses are kept
    assert rows(again)["patient"]["pinned"] and rows(again)["base"]["state"] == "paused"
    again.learner.pin("")
    again.learner.resume("base")
    # back in play; with no calls of its own while the others have many, it counts as new
    assert rows(again)["base"]["state"] == "new" and not rows(again)["patient"]["pinned"]
    with pytest.raises(ConfigError, match="no variant 'nope'"):
        again.learner.pause("nope")
    again.close()


def test_everything_paused_still_answers_calls_with_base(tmp_path):
    service = Service(tmp_path / "calls.db")
    for name in ("base", "brief", "patient"):
        service.learner.pause(name)
    assert service.call(lambda v: GOOD)[0] == "base"
    service.close()


def test_learn_rescores_with_new_weights_and_is_idempotent(tmp_path):
    service = Service(tmp_path / "calls.db")
    for _ in range(40):
        service.call(lambda v: BAD if v == "base" else GOOD)
    first = service.learner.learn()
    assert first["calls"] == 40 and first["rescored"] == 0
    assert set(first["estimates"]) == {"base", "brief", "patient"}
    service.close()
    # An operator who cares only for ratings: the same calls, scored again.
    harsh = Service(tmp_path / "calls.db", TOM_REWARD_RATING="1.0")
    result = harsh.learner.learn()
    assert result["rescored"] > 0
    base = next(row for row in result["variants"] if row["variant"] == "base")
    assert base["mean_reward"] < 0.1 + 1 / (base["calls"] + 2)     # every rating was 1
    assert harsh.learner.learn()["rescored"] == 0                     # idempotent
    harsh.close()


def test_a_broken_reload_keeps_the_running_variants(tmp_path):
    broken = tmp_path / "variants.toml"
    broken.write_text("[[variant]]\nid = 'base'\n")
    service = Service(tmp_path / "calls.db", TOM_VARIANTS_FILE=str(broken))
    assert set(service.learner.variants) == {"base"}
    broken.write_text("[[variant]\n")
    service.learner.reload()
    assert set(service.learner.variants) == {"base"}
    broken.write_text("[[variant]]\nid = 'base'\n[[variant]]\nid = 'fresh'\n")
    service.learner.reload()
    assert set(service.learner.variants) == {"base", "fresh"}
    service.close()


def test_signals_are_all_a_call_record_keeps():
    assert set(dataclasses.asdict(GOOD)) == {
        "rating", "hung_up_on_tom", "asked_for_person", "fallback_turns", "barge_ins",
        "answers", "reprompts", "duration_s", "transferred"}
