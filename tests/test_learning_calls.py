"""Learning from a real call: a variant chosen at its start, the rating asked before the
goodbye over the media stream and answered on the keypad, the reward under that variant in
`tomctl variants`, and the same after a restart."""

import json
import os
import sqlite3
from importlib import resources

import numpy as np
import pytest

from testkit.speech import piper_say, silence
from tests.cli import run_tomctl
from tests.leaks import wait_until
from tests.phone import RATE, Phone, assert_nothing_left, pcm
from tomctl.learning.learner import weights_from
from tomctl.learning.reward import reward, Signals

pytestmark = pytest.mark.timeout(180)
EXAMPLE = str(resources.files("tomctl.learning").joinpath("data", "variants.toml"))
SETTINGS = {"TOM_VARIANTS_FILE": EXAMPLE, "TOM_FEEDBACK": "true",
            "TOM_SILENCE_TIMEOUT_S": "30"}


def variants(phone):
    code, output = run_tomctl({**os.environ,
                               "TOM_ADMIN_PORT": str(phone.service.admin.address[1])},
                              "variants", "--json")
    assert code == 0, output
    return {row["variant"]: row for row in json.loads(output)["variants"]}


def heard(call, frames):
    return frames[len(frames) // 2] in [frame for _, frame in call.heard]


def test_a_rated_call_is_learned_under_its_variant_and_kept_over_a_restart(engine, tmp_path):
    phone = Phone(engine, tmp_path, **SETTINGS)
    try:
        phone.service.learner.pin("brief")        # which variant the call gets, for the test
        goodbye = piper_say(engine, "Okay, thank you, goodbye.", RATE)
        call = phone.call(pcm(np.concatenate([silence(8.0, RATE), goodbye,
                                              silence(40.0, RATE)])))
        assert call.wait_answered(timeout_s=10)
        # The caller hears the brief variant's own greeting, then, after their goodbye, the
        # rating question, streamed (a playback would end the fork).
        wait_until(lambda: heard(call, engine.phrase("greeting:brief", RATE)), 20,
                   "the variant's greeting")
        wait_until(lambda: heard(call, engine.phrase("rating_question:brief", RATE)), 40,
                   "the rating question, as the variant says it")
        assert call.played == []
        call.send_dtmf("4")
        assert call.wait_ended(timeout_s=30)
        assert call.played[0]["tags"]["tom_prompt_id"].startswith("goodbye-")
        assert_nothing_left(phone)
        wait_until(lambda: phone.service.store.learning_log()[0], 10, "the scored call")
        calls, _ = phone.service.store.learning_log()
        assert [(c["id"], c["variant"]) for c in calls] == [(call.uuid, "brief")]
        signals = json.loads(calls[0]["signals"])
        assert signals["rating"] == 4 and not signals["transferred"]
        expected = reward(Signals(**signals), weights_from(phone.service.settings.learning))
        assert calls[0]["reward"] == pytest.approx(expected)
        table = variants(phone)
        assert table["brief"]["calls"] == 1 and table["base"]["calls"] == 0
        assert table["brief"]["mean_reward"] == pytest.approx((1 + expected) / 3, abs=1e-3)
        assert table["brief"]["pinned"] and table["brief"]["share"] == 1.0
        with sqlite3.connect(phone.service.settings.store.path) as db:
            assert db.execute("select call_id, kind, value from feedback").fetchall() == \
                [(call.uuid, "rating", 4)]
        assert engine.metrics.registry.get_sample_value(
            "tom_rl_feedback_total", {"kind": "rating"}) >= 1
    finally:
        phone.close()
    again = Phone(engine, tmp_path, **SETTINGS)
    try:
        def state(rows):
            return {name: (row["calls"], row["mean_reward"], row["pinned"])
                    for name, row in rows.items()}
        assert state(variants(again)) == state(table)
    finally:
        again.close()


def test_no_key_after_the_rating_question_is_no_rating(engine, tmp_path):
    phone = Phone(engine, tmp_path, **SETTINGS, TOM_FEEDBACK_TIMEOUT_S="1")
    try:
        phone.service.learner.pin("patient")      # the base's voice and pace
        goodbye = piper_say(engine, "Thanks, that's all, bye.", RATE)
        call = phone.call(pcm(np.concatenate([silence(8.0, RATE), goodbye,
                                              silence(40.0, RATE)])))
        assert call.wait_answered(timeout_s=10)
        assert call.wait_ended(timeout_s=60)
        assert heard(call, engine.phrase("rating_question", RATE))
        assert_nothing_left(phone)
        wait_until(lambda: phone.service.store.learning_log()[0], 10, "the scored call")
        signals = json.loads(phone.service.store.learning_log()[0][0]["signals"])
        assert signals["rating"] is None
        assert engine.metrics.registry.get_sample_value(
            "tom_rl_feedback_total", {"kind": "none"}) >= 1
    finally:
        phone.close()


def test_a_browser_session_gets_a_variant_and_a_thumb_rates_it(engine, tmp_path):
    from testkit.wsclient import Client

    phone = Phone(engine, tmp_path, **SETTINGS)
    try:
        phone.service.learner.pin("patient")
        client = Client(phone.service.gateway.address)
        client.send_json({"type": "auth", "token": ""})
        client.wait_event("ready")
        client.send_json({"type": "feedback", "value": "down"})
        client.send_json({"type": "feedback", "value": "up"})      # one thumb per session
        client.close()
        wait_until(lambda: phone.service.gateway.connections == 0, 10, "the session to end")
        wait_until(lambda: phone.service.store.learning_log()[0], 10, "the scored session")
        calls, _ = phone.service.store.learning_log()
        assert [c["variant"] for c in calls] == ["patient"]
        assert json.loads(calls[0]["signals"])["rating"] == 1
        session = phone.service.store.recent_calls(1)[0]
        assert (session["caller_hash"], session["outcome"]) == ("browser", "browser")
        assert variants(phone)["patient"]["calls"] == 1
        bad = Client(phone.service.gateway.address)
        bad.send_json({"type": "auth", "token": ""})
        bad.wait_event("ready")
        bad.send_json({"type": "feedback", "value": "meh"})
        assert bad.wait_closed() == 1003
    finally:
        phone.close()


def test_a_reload_brings_new_variants_to_new_calls_with_their_greeting(engine, tmp_path):
    path = tmp_path / "variants.toml"
    path.write_text("[[variant]]\nid = 'base'\n")
    phone = Phone(engine, tmp_path, TOM_VARIANTS_FILE=str(path))
    try:
        path.write_text("[[variant]]\nid = 'base'\n[[variant]]\nid = 'warm'\n"
                        "greeting = 'Hello and welcome, I am the automated assistant.'\n")
        phone.service.reload_variants()           # what SIGHUP runs
        assert set(phone.service.learner.variants) == {"base", "warm"}
        phone.service.learner.pin("warm")
        call = phone.call(b"")
        assert call.wait_answered(timeout_s=10)
        wait_until(lambda: heard(call, engine.phrase("greeting:warm", RATE)), 20,
                   "the new variant's greeting")
        call.hangup()
        assert call.wait_ended(timeout_s=10)
        assert_nothing_left(phone)
    finally:
        phone.close()


def test_a_variants_pace_and_voice_reach_piper(engine, tmp_path, monkeypatch):
    import shutil

    from tomctl.speech import assets

    text = "Thank you for calling the parts counter."
    engine.add_phrase("pace:slow", text, length_scale=1.4)
    engine.add_phrase("pace:fast", text, length_scale=0.7)
    slow, fast = engine.phrase("pace:slow", RATE), engine.phrase("pace:fast", RATE)
    # Twice the length scale; Piper's own noise varies a phrase's length by a tenth or so.
    assert len(slow) > 1.3 * len(fast)
    bundled = assets.tts_voice_file("")
    copy = tmp_path / "other.onnx"
    shutil.copy(bundled, copy)
    shutil.copy(f"{bundled}.json", f"{copy}.json")
    engine.add_voice(str(copy))
    spoken = []
    other = engine._voices[str(copy)]
    real = other.synthesize
    monkeypatch.setattr(other, "synthesize", lambda *args: spoken.append(args[0]) or real(*args))
    assert engine.synthesize("Hello.", RATE, voice=str(copy)) and spoken == ["Hello."]
    assert engine.synthesize("Hello again.", RATE) and spoken == ["Hello."]   # base voice
