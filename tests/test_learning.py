"""Learning from callers (pure): the reward, the bandit with its deploy guard, offline
evaluation."""

import gevent
import numpy as np
import pytest

from tomctl.learning import bandit, evaluation
from tomctl.learning.reward import Signals, Weights, implicit, reward

W = Weights()


@pytest.mark.parametrize("signals, expected", [
    (Signals(duration_s=60, answers=3), 1.0),                        # a good call, unrated
    (Signals(rating=5, duration_s=60, answers=3), 1.0),
    (Signals(rating=1, duration_s=60, answers=3), 0.3),              # 0.7 * 0 + 0.3 * 1
    (Signals(rating=3, duration_s=60, answers=3), 0.65),
    (Signals(hung_up_on_tom=True, duration_s=60), 0.7),
    (Signals(asked_for_person=True, transferred=True, duration_s=60), 0.5),
    (Signals(fallback_turns=5, duration_s=60), 0.55),                 # at most three count
    (Signals(barge_ins=3, answers=3, duration_s=60), 0.8),
    (Signals(barge_ins=9, answers=3, duration_s=60), 0.8),            # at most once per answer
    (Signals(reprompts=1, duration_s=60), 0.9),
    (Signals(duration_s=5), 0.9),                                     # a short call
    (Signals(hung_up_on_tom=True, asked_for_person=True, fallback_turns=3, reprompts=2,
             transferred=True, duration_s=5), 0.0),                   # never below 0
    (Signals(rating=9, duration_s=60), 1.0),                          # out of range: clipped
])
def test_reward(signals, expected):
    assert reward(signals, W) == pytest.approx(expected)
    assert 0.0 <= implicit(signals, W) <= 1.0


def test_reward_weights_are_settings_that_change_the_reward():
    call = Signals(hung_up_on_tom=True, duration_s=60)
    assert reward(call, Weights(hung_up_on_tom=0.5)) == 0.5
    assert reward(Signals(rating=1, duration_s=60), Weights(rating=1.0)) == 0.0


def test_a_fractional_reward_moves_the_posterior_by_its_size():
    arm = bandit.Arm("a")
    arm.update(0.75)
    assert (arm.alpha, arm.beta, arm.calls) == (1.75, 1.25, 1)
    arm.update(7)               # out of range: one whole success, no more
    assert (arm.alpha, arm.beta) == (2.75, 1.25)
    low, high = arm.interval()
    assert 0 <= low < arm.mean < high <= 1


def arms(*specs):
    made = []
    for name, mean, calls, *state in specs:
        arm = bandit.Arm(name, alpha=1 + mean * calls, beta=1 + (1 - mean) * calls,
                         calls=calls, state=state[0] if state else bandit.ACTIVE)
        made.append(arm)
    return made


def rng():
    return np.random.default_rng(1)


def test_thompson_shares_follow_the_probability_of_being_best():
    chances = bandit.shares(arms(("good", 0.8, 200), ("bad", 0.4, 200)), bandit.Guard(), rng())
    assert chances["good"] == pytest.approx(0.975)       # the exploration floor for "bad"
    assert chances["bad"] == pytest.approx(0.025)
    assert sum(chances.values()) == pytest.approx(1.0)


def test_a_new_variant_is_capped_until_it_has_enough_calls():
    chances = bandit.shares(arms(("base", 0.5, 300), ("new", 0.5, 3)), bandit.Guard(), rng())
    assert chances["new"] == pytest.approx(0.1)           # not the young variant's 1/2
    settled = bandit.shares(arms(("base", 0.5, 300), ("new", 0.9, 25)), bandit.Guard(), rng())
    assert settled["new"] > 0.9                            # past min_calls: no cap


def test_at_a_cold_start_every_variant_gets_an_equal_share_until_judged():
    chances = bandit.shares(arms(("a", 0.9, 4), ("b", 0.1, 4), ("c", 0.5, 4)), bandit.Guard(),
                            rng())
    assert all(value == pytest.approx(1 / 3) for value in chances.values())


def test_paused_blacklisted_and_pinned():
    made = arms(("a", 0.9, 100), ("b", 0.5, 100, bandit.PAUSED),
                ("c", 0.5, 100, bandit.BLACKLISTED), ("d", 0.4, 100))
    chances = bandit.shares(made, bandit.Guard(), rng())
    assert chances["b"] == chances["c"] == 0 and chances["a"] + chances["d"] == pytest.approx(1)
    assert bandit.shares(made, bandit.Guard(), rng(), pinned="d") == \
        {"a": 0.0, "b": 0.0, "c": 0.0, "d": 1.0}
    # a pin on a variant that cannot run is ignored, not obeyed
    assert bandit.shares(made, bandit.Guard(), rng(), pinned="b")["b"] == 0
    with pytest.raises(ValueError, match="no variant"):
        bandit.choose({"b": 0.0}, rng())


def test_choices_follow_the_shares_and_report_their_propensity():
    generator = rng()
    # 2000 choices in a row are CPU work: off the hub, as a test loop of them must be.
    picks = gevent.get_hub().threadpool.apply(
        lambda: [bandit.choose({"a": 0.8, "b": 0.2}, generator) for _ in range(2000)])
    share = sum(1 for name, _ in picks if name == "a") / len(picks)
    assert 0.77 < share < 0.83
    assert {p for name, p in picks if name == "b"} == {0.2}


@pytest.mark.parametrize("specs, blacklisted", [
    ([("good", 0.85, 60), ("bad", 0.3, 20)], ["bad"]),
    ([("good", 0.85, 60), ("bad", 0.3, 5)], []),                 # too few calls to judge
    ([("good", 0.85, 60), ("close", 0.82, 60)], []),             # within the margin
    ([("good", 0.85, 200), ("worse", 0.7, 200), ("bad", 0.2, 30)], ["worse", "bad"]),
    ([("good", 0.85, 60), ("bad", 0.3, 20, bandit.PAUSED)], []),  # paused: not judged
])
def test_the_guard_blacklists_only_what_is_surely_worse(specs, blacklisted):
    decisions = bandit.judge(arms(*specs), bandit.Guard(), rng())
    assert [d.variant for d in decisions] == blacklisted
    assert all("worse than the best (good" in d.reason for d in decisions)


def test_ips_recovers_a_variants_mean_from_logged_choices():
    generator = np.random.default_rng(3)
    truth = {"a": 0.7, "b": 0.4}
    chances = {"a": 0.8, "b": 0.2}
    chosen = generator.choice(["a", "b"], size=4000, p=[0.8, 0.2])
    log = [evaluation.Logged(variant, chances, float(generator.random() < truth[variant]))
           for variant in chosen]
    for name, mean in truth.items():
        found = evaluation.estimate(log, name)
        # Three standard errors or so: a bound that holds for any seed in practice.
        assert abs(found.ips - mean) < 0.05 and abs(found.snips - mean) < 0.05, found
        for low, high in (found.ips_interval, found.snips_interval):
            assert low < found.ips < high or low < found.snips < high
            assert high - low < 0.15


def test_ips_ignores_calls_in_which_a_variant_could_not_be_chosen():
    log = [evaluation.Logged("a", {"a": 1.0, "b": 0.0}, 1.0)] * 50 + \
          [evaluation.Logged("b", {"a": 0.5, "b": 0.5}, 0.2),
           evaluation.Logged("a", {"a": 0.5, "b": 0.5}, 1.0)] * 50
    found = evaluation.estimate(log, "b")
    assert found.ips == pytest.approx(0.2) and found.calls == 50
    assert evaluation.estimate([], "b").calls == 0


# -- the variants file --------------------------------------------------------------------

from importlib import resources  # noqa: E402

from tomctl.config import PersonaSettings  # noqa: E402
from tomctl.errors import ConfigError  # noqa: E402
from tomctl.learning import variants  # noqa: E402

PERSONA = PersonaSettings()


def test_without_a_file_tom_runs_base_alone():
    assert [v.id for v in variants.load("", PERSONA)] == ["base"]
    assert variants.load("", PERSONA)[0].overrides() == {}


def test_the_bundled_example_loads():
    path = str(resources.files("tomctl.learning").joinpath("data", "variants.toml"))
    loaded = {v.id: v for v in variants.load(path, PERSONA)}
    assert set(loaded) == {"base", "brief", "patient"}
    assert loaded["brief"].length_scale == 0.9
    assert "the automated assistant at the parts counter" in loaded["brief"].greeting
    assert loaded["patient"].overrides() == {"temperature": 0.5, "turn_ask_after_ms": 200,
                                             "turn_max_silence_ms": 2000}


@pytest.mark.parametrize("body, message", [
    ("[[variant]]\nid = 'Base!'", "variant 1: id must be"),
    ("[[variant]]\nid = 'a'\n[[variant]]\nid = 'a'", "variant 'a' is defined twice"),
    ("[[variant]]\nid = 'a'\npace = 2", "variant 'a': unknown field 'pace'"),
    ("[[variant]]\nid = 'a'\nlength_scale = 9.0", "variant 'a': length_scale must be float"),
    ("[[variant]]\nid = 'a'\ntemperature = 'hot'", "variant 'a': temperature must be"),
    ("[[variant]]\nid = 'a'\nturn_max_silence_ms = 1.5", "turn_max_silence_ms must be int"),
    ("[[variant]]\nid = 'a'\ngreeting = 'Hello, this is Tom.'", "automated assistant"),
    ("[[variant]]\nid = 'a'\nsystem_prompt = 'You are {name}.'", "bad placeholder"),
    ("[[variant]]\nid = 'a'\ngreeting = ''", "greeting must be a non-empty string"),
    ("title = 'x'", r"no \[\[variant\]\] tables"),
    ("[[variant]\nid = 'a'", "is not valid TOML"),
])
def test_a_broken_variants_file_names_the_file_the_variant_and_the_field(tmp_path, body,
                                                                         message):
    path = tmp_path / "variants.toml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message) as error:
        variants.load(str(path), PERSONA)
    assert str(path) in str(error.value)


def test_a_missing_variants_file_names_the_setting(tmp_path):
    with pytest.raises(ConfigError, match="TOM_VARIANTS_FILE: cannot read"):
        variants.load(str(tmp_path / "gone.toml"), PERSONA)


# -- intents that end a call and rate it ---------------------------------------------------

from tomctl.call.intents import says_goodbye, spoken_rating  # noqa: E402


@pytest.mark.parametrize("language, said, leaving", [
    ("en", "Okay, thanks, bye!", True),
    ("en", "Thank you, that's all.", True),
    ("en", "Goodbye.", True),
    ("en", "That's all I needed, thanks, bye.", True),
    ("en", "Have a nice day!", True),
    ("en", "Nothing else, thanks.", True),
    ("en", "I said goodbye to my old car.", False),
    ("en", "Bye the way, do you have brake pads?", False),
    ("en", "Thanks.", False),                  # thanks alone may come before a question
    ("en", "Okay.", False),
    ("en", "That's all very well, but where is my order?", False),
    ("de", "Danke, das war's, tschüss!", True),
    ("de", "Auf Wiederhören.", True),
    ("de", "Vielen Dank, schönen Tag noch.", True),
    ("de", "Ich habe tschüss gesagt und bin gegangen.", False),
    ("de", "Danke.", False),
])
def test_a_goodbye_is_a_whole_utterance_not_a_word(language, said, leaving):
    assert says_goodbye(said, language) is leaving


@pytest.mark.parametrize("language, said, rating", [
    ("en", "Five.", 5), ("en", "4", 4), ("en", "I'd say three", 3), ("en", "one or two", None),
    ("en", "It was fine, I guess, thanks a lot", None), ("de", "Fünf.", 5), ("de", "zwo", 2),
])
def test_a_spoken_rating(language, said, rating):
    assert spoken_rating(said, language) == rating


def test_a_variant_voice_must_be_a_piper_voice_with_its_config(tmp_path):
    voice = tmp_path / "amy.onnx"
    body = f"[[variant]]\nid = 'amy'\nvoice = '{voice}'\n"
    path = tmp_path / "variants.toml"
    path.write_text(body)
    with pytest.raises(ConfigError, match="amy.onnx.json are both needed"):
        variants.load(str(path), PERSONA)
    voice.write_bytes(b"onnx")
    (tmp_path / "amy.onnx.json").write_text("{}")
    assert variants.load(str(path), PERSONA)[0].voice == str(voice)
    path.write_text("[[variant]]\nid = 'amy'\nvoice = 'amy.wav'\n")
    with pytest.raises(ConfigError, match="voice must be the path of a Piper .onnx"):
        variants.load(str(path), PERSONA)


def test_a_variant_says_its_fixed_phrases_its_own_way_only_when_it_sounds_different():
    assert variants.phrase_name("holding", variants.Variant("calm", temperature=0.2)) == \
        "holding"
    assert variants.phrase_name("holding", variants.Variant("fast", length_scale=0.8)) == \
        "holding:fast"
