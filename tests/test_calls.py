"""Phone calls end to end: the fake FreeSWITCH (testkit/fakes/) places calls into a real TOM
service (real sockets, real models) and records what the caller heard."""

import json
import re
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.cli import run_tomctl
from tests.phone import RATE, Phone, assert_nothing_left, pcm
from testkit.wsclient import http_get
from tests.leaks import wait_until
from testkit.speech import piper_say, silence, word_error_rate
from tomctl.errors import LanguageModelError

pytestmark = pytest.mark.timeout(120)

QUESTION = "Do you have brake pads for a Volkswagen Golf?"


@pytest.fixture
def phone(engine, tmp_path):
    phone = Phone(engine, tmp_path, TOM_SILENCE_TIMEOUT_S="30")
    yield phone
    phone.close()


def test_a_caller_asks_and_tom_answers(phone):
    question = pcm(np.concatenate([silence(6.0, RATE), piper_say(phone.engine, QUESTION, RATE),
                                   silence(12.0, RATE)]))
    call = phone.call(question)
    assert call.wait_answered(timeout_s=10)
    record = phone.service.registry.active()[0]
    assert record.caller_hash and "4915112345678" not in repr(record)
    wait_until(lambda: record.turns >= 1 and record.state == "listening"
               and call.audio_position_s > 9, 40, "an answer")
    call.hangup()
    assert call.wait_ended(timeout_s=10)
    assert_nothing_left(phone)
    heard = phone.transcribe_heard(call)
    greeting = phone.engine.persona.phrases["greeting"]
    assert word_error_rate(greeting, heard[:len(greeting)]) <= 0.5, heard
    answer = heard[len(greeting):].strip()
    assert len(answer.split()) >= 3, heard
    assert call.displace_used is False
    finished = phone.service.registry.finished()[0]
    assert finished.outcome == "answered" and finished.turns == 1
    assert finished.hangup_cause == "NORMAL_CLEARING"
    stored = phone.service.store.recent_calls(5)[0]     # the store keeps the same, on disk
    assert (stored["id"], stored["outcome"], stored["turns"]) == (call.uuid, "answered", 1)
    assert stored["caller_hash"] == finished.caller_hash and stored["answered_at"]
    turn = phone.service.store.turns_of(call.uuid)[0]
    assert turn["outcome"] == "answered" and turn["e2e_ms"] > 0
    assert word_error_rate(QUESTION, turn["transcript"]) <= 0.5 and turn["reply"]


def test_a_model_failing_mid_call_costs_one_turn_not_the_call(phone, monkeypatch):
    failing = [True]
    working = phone.engine.llm.stream_sentences

    def flaky(*args, **kwargs):
        if failing[0]:
            raise LanguageModelError("simulated failure")
        return working(*args, **kwargs)

    monkeypatch.setattr(phone.engine.llm, "stream_sentences", flaky)
    asked = piper_say(phone.engine, QUESTION, RATE)
    call = phone.call(pcm(np.concatenate([silence(6.0, RATE), asked, silence(8.0, RATE), asked,
                                          silence(12.0, RATE)])))
    assert call.wait_answered(timeout_s=10)
    record = phone.service.registry.active()[0]
    wait_until(lambda: record.turns >= 1, 30, "the first turn")
    failing[0] = False                 # the model works again before the second question
    wait_until(lambda: record.turns >= 2 and record.state == "listening", 40, "an answer")
    call.hangup()
    assert call.wait_ended(timeout_s=10)
    assert_nothing_left(phone)
    outcomes = [turn["outcome"] for turn in phone.service.store.turns_of(call.uuid)]
    assert outcomes == ["fallback", "answered"], outcomes
    fallback = b"".join(phone.engine.phrase("fallback", RATE))
    assert fallback[:6400] in call.heard_pcm()       # the caller heard the fallback sentence
    assert phone.service.registry.finished()[0].outcome == "answered"


def test_voice_barge_in_stops_the_greeting(phone):
    interruption = piper_say(phone.engine, "Wait, I have a question about my order.", RATE)
    call = phone.call(pcm(np.concatenate([silence(1.5, RATE), interruption, silence(5, RATE)])))
    assert call.wait_answered(timeout_s=10)
    wait_until(lambda: call.audio_position_s > 4, 20, "the interruption")
    greeting_s = len(b"".join(phone.engine.phrase("greeting", RATE))) / 2 / RATE
    heard_s = len(call.heard_pcm()) / 2 / RATE
    # TOM stopped within a fraction of a second of the caller starting at 1.5 s
    assert heard_s < 2.3 < greeting_s, heard_s
    sent_after = [t for t, _ in call.heard if t - call.answered_at > 2.5]
    call.hangup()
    assert call.wait_ended(timeout_s=10)
    assert_nothing_left(phone)
    assert not sent_after or len(sent_after) < 50  # no leftover greeting frames


def test_dtmf_zero_hands_over_to_a_person(phone):
    call = phone.call(b"")
    assert call.wait_answered(timeout_s=10)
    call.wait_heard(3200, timeout_s=10)
    call.send_dtmf("0")
    assert call.wait_played(timeout_s=10)
    wait_until(lambda: call.transferred_to, 15, "the transfer")
    assert call.transferred_to == "1000"
    assert call.played[0]["tags"]["tom_prompt_id"].startswith("handover-")
    assert call.wait_ended(timeout_s=10)
    assert_nothing_left(phone)
    assert phone.service.registry.finished()[0].outcome == "transferred"


def test_a_silent_caller_is_asked_once_then_told_goodbye(engine, tmp_path):
    phone = Phone(engine, tmp_path, TOM_SILENCE_TIMEOUT_S="1.5")
    try:
        call = phone.call(b"")
        assert call.wait_ended(timeout_s=40)
        assert call.hung_up and call.hangup_cause == "NORMAL_CLEARING"
        assert [p["tags"]["tom_prompt_id"].split("-")[0] for p in call.played] == ["goodbye"]
        heard = phone.transcribe_heard(call).lower()
        assert "still there" in heard, heard
        assert_nothing_left(phone)
    finally:
        phone.close()


def test_hangup_in_the_middle_of_an_answer(phone):
    question = pcm(np.concatenate([silence(5.5, RATE), piper_say(phone.engine, QUESTION, RATE),
                                   silence(20, RATE)]))
    call = phone.call(question)
    assert call.wait_answered(timeout_s=10)
    record = phone.service.registry.active()[0]
    wait_until(lambda: record.state == "speaking" and call.audio_position_s > 7, 40,
               "TOM answering")
    call.hangup()
    assert call.wait_ended(timeout_s=10)
    assert_nothing_left(phone)
    assert phone.service.registry.finished()[0].outcome in ("answered", "abandoned")


def test_the_inbound_link_comes_back_after_a_freeswitch_restart(phone):
    link = phone.service.link
    wait_until(lambda: link.state == "up", 10, "the link")
    assert "UP" in link.api("status")
    phone.switch.stop()
    wait_until(lambda: link.state == "down", 10, "the link to drop")
    phone.switch.start()
    wait_until(lambda: link.state == "up" and link.connects == 2, 20, "the link to return")
    call = phone.call(b"")
    assert call.wait_answered(timeout_s=10)
    call.wait_heard(3200, timeout_s=10)
    call.hangup()
    assert call.wait_ended(timeout_s=10)
    assert_nothing_left(phone)


def test_calls_over_capacity_go_to_the_fallback(engine, tmp_path):
    phone = Phone(engine, tmp_path, TOM_MAX_CALLS="1")
    try:
        first = phone.call(b"")
        assert first.wait_answered(timeout_s=10)
        second = phone.call(b"")
        assert second.wait_ended(timeout_s=10)
        assert second.fell_back and not second.stuck
        assert not any("execute-app-name: answer" in command for command in second.commands)
        first.hangup()
        assert first.wait_ended(timeout_s=10)
        assert_nothing_left(phone)
        assert engine.metrics.calls.labels(outcome="rejected")._value.get() >= 1
    finally:
        phone.close()


def test_the_caller_id_name_cannot_inject_a_command(phone, caplog):
    caplog.set_level(logging.DEBUG, logger="tomctl")
    call = phone.call(b"", caller_id_name="Eve\r\n\r\napi uuid_kill all\r\n\r\n",
                      caller_id_number="4917612345678")
    assert call.wait_answered(timeout_s=10)
    call.wait_heard(3200, timeout_s=10)
    call.hangup()
    assert call.wait_ended(timeout_s=10)
    assert not any("uuid_kill" in command for command in call.commands)
    assert "4917612345678" not in caplog.text
    assert_nothing_left(phone)


@pytest.mark.parametrize("garbage", [
    b"this is not an ESL frame\n\n",
    b"Content-Length: 12x\nContent-Type: text/event-plain\n\n",
    b"Content-Type: command/reply\nReply-Text: +OK\n\n",        # a reply nobody asked for
])
def test_malformed_esl_ends_the_call_cleanly(phone, garbage):
    call = phone.call(b"")
    assert call.wait_answered(timeout_s=10)
    call.wait_heard(1600, timeout_s=10)
    call.send_raw(garbage)
    assert call.wait_ended(timeout_s=10)
    assert call.fell_back            # the caller goes to a person, not into silence
    assert_nothing_left(phone)
    assert phone.service.registry.finished()[0].outcome == "failed"
    again = phone.call(b"")          # the process lives on
    assert again.wait_answered(timeout_s=10)
    again.hangup()
    assert again.wait_ended(timeout_s=10)


def test_a_truncated_frame_then_a_closed_socket(phone):
    call = phone.call(b"")
    assert call.wait_answered(timeout_s=10)
    call.wait_heard(1600, timeout_s=10)
    call.send_raw(b"Content-Length: 500\nContent-Type: text/event-plain\n\nEvent-Name: DT")
    phone.switch.stop()
    wait_until(lambda: phone.service.listener.active == 0, 10, "the call to end")
    assert_nothing_left(phone)


def tomctl(phone, *args: str) -> tuple[int, str]:
    """Run the tomctl CLI as an operator would, against this service's admin port."""
    return run_tomctl({**os.environ, "TOM_ADMIN_PORT": str(phone.service.admin.address[1])},
                      *args)


def test_status_calls_and_metrics_show_a_call(phone):
    call = phone.call(b"")
    assert call.wait_answered(timeout_s=10)
    code, output = tomctl(phone, "calls", "--json")
    assert code == 0 and [c["id"] for c in json.loads(output)["active"]] == [call.uuid]
    code, output = tomctl(phone, "status", "--json")
    status = json.loads(output)
    assert code == 0 and status["active_calls"] == 1
    assert status["freeswitch_link"]["state"] == "up" and status["models"]["stt"] == "cpu"
    assert "tom_telephony_active_calls 1.0" in http_get(phone.service.admin.address, "/metrics")
    code, table = tomctl(phone, "calls")
    assert code == 0 and call.uuid in table and "4915112345678" not in table
    call.hangup()
    assert call.wait_ended(timeout_s=10)
    assert_nothing_left(phone)
    code, output = tomctl(phone, "calls", "--json")
    finished = json.loads(output)["finished"]
    assert [(c["id"], c["outcome"]) for c in finished] == [(call.uuid, "abandoned")]
    metrics = http_get(phone.service.admin.address, "/metrics")
    assert 'tom_telephony_calls_total{outcome="abandoned"}' in metrics


def test_status_says_clearly_when_tom_is_not_running():
    environ = {**os.environ, "TOM_ADMIN_PORT": "9"}     # discard: nothing answers HTTP
    result = subprocess.run([sys.executable, "-m", "tomctl", "status"], env=environ,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 3 and "not running" in result.stderr


def selfcheck(phone) -> tuple[int, dict]:
    code, output = tomctl(phone, "selfcheck", "--json")
    result = json.loads(output[output.index("{"):])
    return code, {check["name"]: check["status"] for check in result["checks"]} | {
        "overall": result["status"]}


def test_selfcheck_is_green_and_names_freeswitch_when_it_stops(phone):
    code, checks = selfcheck(phone)
    assert (code, checks["overall"]) == (0, "green"), checks
    assert checks["service"] == checks["pipeline"] == checks["database"] == "green"
    phone.switch.stop()
    wait_until(lambda: phone.service.link.state == "down", 10, "the link to drop")
    code, checks = selfcheck(phone)
    assert (code, checks["overall"], checks["freeswitch_esl"]) == (2, "red", "red")
    assert checks["database"] == "green"
    code, table = tomctl(phone, "status")
    assert code == 0 and "last selfcheck" in table and "red" in table and "freeswitch_esl" in table
    phone.switch.start()


def test_selfcheck_names_a_read_only_database(engine, tmp_path):
    from tomctl.store.calls import CallStore
    path = tmp_path / "calls.db"
    store = CallStore(str(path), False, engine.metrics)
    store.start()                       # the schema exists; then the file is opened read-only
    store.close()
    phone = Phone(engine, tmp_path, TOM_DB_PATH=f"file:{path}?mode=ro")
    try:
        code, checks = selfcheck(phone)
        assert (code, checks["overall"], checks["database"]) == (2, "red", "red")
        assert checks["freeswitch_esl"] == "green"
    finally:
        phone.close()


def test_a_synthetic_call_is_answered_and_timed(phone):
    code, output = tomctl(phone, "synthetic-call", "--json")
    result = json.loads(output[output.index("{"):])
    assert code == 0 and result["passed"], result
    assert 0 < result["e2e_ms"] < 5000
    call = next(c for c in phone.switch.calls if c.uuid == result["call"])
    assert call.wait_ended(timeout_s=10) and call.hung_up     # TOM's caller hung up
    assert_nothing_left(phone)
    phone.switch.stop()
    wait_until(lambda: phone.service.link.state == "down", 10, "the link to drop")
    code, output = tomctl(phone, "synthetic-call")
    assert code == 1 and "originate failed" in output
    wait_until(lambda: phone.service.link.last_error.startswith("ConnectionRefusedError"), 10,
               "a failed reconnect")
    code, output = tomctl(phone, "status")
    assert code == 0 and re.search(r"FreeSWITCH link +down: ConnectionRefusedError: .* "
                                   r"\(\d+ s ago\)\n", output), output
    phone.switch.start()
    wait_until(lambda: phone.service.link.state == "up", 30, "the link to come back")
    code, output = tomctl(phone, "status")         # the old error is not shown next to "up"
    assert code == 0 and re.search(r"FreeSWITCH link +up\n", output), output


def test_purge_runs_through_the_service(phone):
    call = phone.call(b"")
    assert call.wait_answered(timeout_s=10)
    call.hangup()
    assert call.wait_ended(timeout_s=10)
    assert_nothing_left(phone)
    code, output = tomctl(phone, "purge")
    assert code == 0 and "deleted 0 calls" in output     # a fresh call is kept
    assert [c["id"] for c in phone.service.store.recent_calls(5)] == [call.uuid]
