"""Recording with consent: the consent answer, the disclosure, the stereo writer, the quality
checks and retention, each alone; then calls through the fake switch that are recorded
only after a clear yes."""

import json
import os
import subprocess
import time
import wave

import numpy as np
import pytest

from tests.cli import run_tomctl
from tests.leaks import wait_until
from tests.phone import RATE, Phone, assert_nothing_left, pcm
from testkit.measure import audible_span
from testkit.speech import espeak_say, piper_say, silence, with_noise
from tomctl import config
from tomctl.errors import ConfigError
from tomctl.metrics import Metrics
from tomctl.recording import qc, retention
from tomctl.recording.consent import consent_answer, consent_from_key
from tomctl.recording.recorder import RecordingWriter
from tomctl.speech.persona import BUNDLED_DIR, discloses_automation, honest, load_persona

pytestmark = pytest.mark.timeout(120)
CALL = "0f0e0d0c-0b0a-4908-8706-050403020100"


# -- consent and disclosure (pure) ------------------------------------------------------------

@pytest.mark.parametrize("language, said, answer", [
    ("en", "Yes.", "yes"), ("en", "Yeah, sure.", "yes"), ("en", "Okay", "yes"),
    ("en", "Yes, that's fine.", "yes"), ("en", "Of course you can.", "yes"),
    ("en", "No.", "no"), ("en", "No, thank you.", "no"), ("en", "I'd rather not.", "no"),
    ("en", "Yes, no, wait.", "no"), ("en", "I don't want that.", "no"),
    ("en", "Yes?", "no"), ("en", "Not now.", "no"), ("en", "Sure, but don't record it.", "no"),
    ("en", "Do you have brake pads for a Golf", "other"), ("en", "", "other"),
    ("en", "Hello?", "no"), ("en", "Yesterday I called you", "other"),
    ("de", "Ja.", "yes"), ("de", "Ja, gerne.", "yes"), ("de", "Einverstanden", "yes"),
    ("de", "In Ordnung.", "yes"), ("de", "Nein.", "no"), ("de", "Nein danke.", "no"),
    ("de", "Lieber nicht.", "no"), ("de", "Ja, aber bitte nicht aufzeichnen.", "no"),
    ("de", "Auf keinen Fall", "no"), ("de", "Ja?", "no"),
    ("de", "Haben Sie Bremsbeläge für einen Golf", "other"), ("de", "Jahr 2015", "other"),
])
def test_only_a_clear_yes_is_consent(language, said, answer):
    assert consent_answer(said, language) == answer


def test_only_keypad_1_is_consent():
    assert consent_from_key("1")
    assert not any(consent_from_key(key) for key in "234567890*#")


def test_both_bundled_greetings_say_a_machine_answers():
    for language in ("en", "de"):
        persona = load_persona(config.load({"TOM_LANGUAGE": language}).persona)
        assert discloses_automation(persona.phrases["greeting"], language)


@pytest.mark.parametrize("language, piece, claims", [
    ("en", "I'm a human.", True), ("en", "I am a real person, not a machine.", True),
    ("en", "I'm not a chatbot.", True), ("en", "I am not an AI assistant.", True),
    ("en", "I'm just a regular employee here.", True),
    ("en", "I'm an automated assistant.", False), ("en", "I'm not sure.", False),
    ("en", "A human colleague can help you.", False), ("en", "I am happy to help.", False),
    ("de", "Ich bin ein Mensch.", True), ("de", "Ich bin kein Roboter.", True),
    ("de", "Ich bin eine echte Person.", True), ("de", "Ich bin Mitarbeiterin hier.", True),
    ("de", "Ich bin gerne für Sie da.", False),
    ("de", "Ich bin ein automatischer Assistent.", False),
    ("de", "Ein Mitarbeiter hilft Ihnen gern.", False),
])
def test_an_answer_claiming_a_person_speaks_says_the_truth_instead(language, piece, claims):
    said = honest(piece, language)
    assert (said != piece) == claims
    assert said == piece or discloses_automation(said, language)


def test_a_greeting_without_the_disclosure_refuses_to_start(tmp_path):
    bundled = config.load({}).persona
    phrases = json.loads((BUNDLED_DIR / "phrases.en.json").read_text())
    phrases["greeting"] = "Hello, this is {assistant_name}. How can I help you?"
    (tmp_path / "phrases.en.json").write_text(json.dumps(phrases))
    (tmp_path / "system.en.txt").write_text("You are {assistant_name}.")
    environ = {"TOM_PROMPT_DIR": str(tmp_path)}
    with pytest.raises(ConfigError, match="TOM_AI_DISCLOSURE"):
        load_persona(config.load(environ).persona)
    persona = load_persona(config.load({**environ, "TOM_AI_DISCLOSURE": "false"}).persona)
    assert persona.phrases["greeting"].startswith("Hello, this is " + bundled.assistant_name)


# -- the quality checks -----------------------------------------------------------------------

def write_wav(path, audio: np.ndarray, rate: int = RATE) -> str:
    samples = audio if audio.dtype == np.int16 else \
        (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1 if samples.ndim == 1 else samples.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return str(path)


@pytest.fixture(scope="module")
def speech():
    return np.concatenate([silence(0.4, RATE), espeak_say(
        "Do you have brake pads for a Volkswagen Golf? I need them by Friday.", RATE),
        silence(0.4, RATE)])


@pytest.mark.parametrize("damage, failing", [
    (lambda s: s * 12, "clipping"),
    (lambda s: s + 0.03, "dc_offset"),
    (lambda s: with_noise(s, 10), "snr_db"),
    (lambda s: s * 0.01, "rms"),
])
def test_qc_fails_damaged_speech_naming_the_check(tmp_path, speech, damage, failing):
    good = qc.check_file(write_wav(tmp_path / "good.wav", speech))
    assert good["verdict"] == "pass", good
    bad = qc.check_file(write_wav(tmp_path / "bad.wav", damage(speech)))
    checks = bad["channels"][0]["checks"]
    assert bad["verdict"] == "fail" and checks[failing]["verdict"] == "fail", checks


def test_tomctl_qc_exit_codes_and_broken_files(tmp_path, speech):
    good = write_wav(tmp_path / "good.wav", speech)
    code, output = run_tomctl(dict(os.environ), "qc", good, "--json")
    assert code == 0 and json.loads(output)["verdict"] == "pass", output
    noisy = write_wav(tmp_path / "noisy.wav", with_noise(speech, 22))   # within 5 dB: warn
    code, output = run_tomctl(dict(os.environ), "qc", noisy)
    assert code == 1 and "snr_db" in output and "warn" in output, output
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(open(good, "rb").read()[:-4000])
    not_wav = tmp_path / "notes.wav"
    not_wav.write_text("not audio")
    code, output = run_tomctl(dict(os.environ), "qc", good, str(truncated), str(not_wav),
                              str(tmp_path / "missing.wav"))
    assert code == 2 and "Traceback" not in output, output
    assert "truncated: the header says" in output and "not a PCM WAV file" in output
    assert "No such file" in output and f"{good}: pass" in output


# -- the writer -------------------------------------------------------------------------------

def tone(frames: int, value: int) -> bytes:
    return np.full(frames * 160, value, np.int16).tobytes()


def test_the_recording_lines_up_both_channels_in_call_time(tmp_path):
    finished = []
    writer = RecordingWriter(str(tmp_path / "rec"), Metrics(),
                             lambda recording, report: finished.append((recording, report)))
    writer.start()
    try:
        recording = writer.begin(CALL, RATE, "given")
        recording.caller(tone(1, 1))
        recording.caller(tone(1, 2))
        recording.tom(tone(1, 100))       # sent while the caller's 3rd frame was on its way
        recording.tom(tone(1, 101))       # a burst: ahead of the caller's audio
        recording.caller(tone(1, 3))
        recording.caller(tone(1, 4))
        recording.caller(tone(1, 5))
        recording.tom(tone(1, 102))       # after a pause: at the caller's 6th frame
        recording.caller(tone(1, 6))
        recording.tom(tone(1, 103))       # TOM's last words, after the caller's last frame
        recording.finish()
        wait_until(lambda: finished, 10, "the recording to be finished")
    finally:
        writer.close()
    path = tmp_path / "rec" / f"{CALL}.wav"
    assert oct(os.stat(tmp_path / "rec").st_mode & 0o777) == "0o700"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, RATE)
        samples = np.frombuffer(wav.readframes(wav.getnframes()), np.int16).reshape(-1, 2)
    frames = samples.reshape(-1, 160, 2)[:, 0, :].tolist()
    assert frames == [[1, 0], [2, 0], [3, 100], [4, 101], [5, 0], [6, 102], [0, 103]]
    sidecar = json.loads((tmp_path / "rec" / f"{CALL}.json").read_text())
    assert sidecar["consent"] == "given" and sidecar["dropped_frames"] == 0
    assert sidecar["channels"] == {"left": "caller", "right": "tom"}
    assert finished[0][1]["channels"][0]["checks"]["duration_s"]["value"] == 0.14


def test_the_file_is_a_valid_wav_while_it_is_written(tmp_path):
    writer = RecordingWriter(str(tmp_path), Metrics(), lambda recording, report: None)
    writer.start()
    try:
        recording = writer.begin(CALL, RATE, "not_asked")
        for n in range(160):              # 3.2 s: three whole seconds are on disk
            recording.caller(tone(1, n))
        path = str(tmp_path / f"{CALL}.wav")
        wait_until(lambda: os.path.exists(path) and os.path.getsize(path) >= 44 + 3 * RATE * 4,
                   10, "3 s written")
        with wave.open(path) as wav:                       # as a kill -9 would leave it
            assert wav.getnframes() >= 3 * RATE
        soxi = subprocess.run(["soxi", "-D", path], capture_output=True, text=True, timeout=30)
        assert soxi.returncode == 0 and float(soxi.stdout) >= 3.0, soxi.stderr
        recording.finish()
    finally:
        writer.close()


# -- retention --------------------------------------------------------------------------------

def test_retention_keeps_recent_recordings_of_known_calls(tmp_path):
    now = time.time()
    known, old, orphan = (f"0f0e0d0c-0b0a-4908-8706-05040302010{n}" for n in range(3))
    for call, age_h in ((known, 1), (old, 30), (orphan, 1)):
        for suffix in (".wav", ".json"):
            path = tmp_path / f"{call}{suffix}"
            path.write_bytes(b"x")
            os.utime(path, (now - age_h * 3600, now - age_h * 3600))
    (tmp_path / "operator-notes.txt").write_text("not TOM's")
    going = retention.expired(str(tmp_path), 24 * 3600, lambda ids: set(ids) - {orphan}, now)
    assert going == {"expired": [f"{old}.json", f"{old}.wav"],
                     "orphaned": [f"{orphan}.json", f"{orphan}.wav"]}
    assert retention.delete(str(tmp_path), going["expired"] + going["orphaned"]) == []
    assert sorted(os.listdir(tmp_path)) == [f"{known}.json", f"{known}.wav",
                                            "operator-notes.txt"]


# -- calls ------------------------------------------------------------------------------------

@pytest.fixture
def consent_phone(engine, tmp_path):
    phone = Phone(engine, tmp_path, TOM_RECORDING="consent",
                  TOM_RECORDING_DIR=str(tmp_path / "recordings"), TOM_CONSENT_TIMEOUT_S="3",
                  TOM_SILENCE_TIMEOUT_S="30")
    phone.recordings = tmp_path / "recordings"
    yield phone
    phone.close()


def phrase_s(phone, *names) -> float:
    return sum(len(phone.engine.phrase(name, RATE)) for name in names) * 0.02


def test_keypad_1_records_the_call_in_stereo_as_carried(consent_phone, engine):
    phone = consent_phone
    question = piper_say(engine, "Do you have brake pads for a Volkswagen Golf?", RATE)
    call = phone.call(b"")
    assert call.wait_answered(timeout_s=10)
    # Into the consent question, as a caller who knows what is coming does.
    call.wait_for(lambda: len(call.heard) * 0.02 > phrase_s(phone, "greeting") + 1, 30,
                  "the consent question")
    call.send_dtmf("1")
    record = phone.service.registry.active()[0]
    wait_until(lambda: phone.service.recorder is not None and os.path.exists(
        phone.recordings / f"{call.uuid}.wav"), 10, "the recording to begin")
    gap_s = phrase_s(phone, "consent_given") + 1.0
    call.say(pcm(np.concatenate([silence(gap_s, RATE), question, silence(1.0, RATE)])))
    wait_until(lambda: record.turns >= 1 and record.state == "listening", 40, "the answer")
    call.hangup()
    assert call.wait_ended(timeout_s=10)
    assert_nothing_left(phone)
    wait_until(lambda: phone.service.store.recording_of(call.uuid), 15, "the recording row")
    row = phone.service.store.recording_of(call.uuid)
    assert row["consent"] == "given" and not row["error"] and row["qc_verdict"]
    assert phone.service.store.recent_calls(1)[0]["consent"] == "given"

    with wave.open(str(phone.recordings / f"{call.uuid}.wav")) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, RATE)
        stereo = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
    caller, tom = stereo[:, 0].tobytes(), stereo[:, 1]
    # The caller's channel is what the fork carried from the key press on, sample for sample
    # (up to its silent end, which runs on while TOM's last frames are written).
    sent = b"".join(frame for _, frame in call.sent_frames())
    caller = caller[:len(caller.rstrip(b"\0")) + 1 & ~1]
    assert len(caller) > 3 * RATE * 2 and sent.find(caller) >= 0
    # TOM's channel is what reached the caller since then, silence where TOM sent nothing.
    frames = [tom[i:i + 160] for i in range(0, len(tom) - 159, 160)]
    voiced = b"".join(f.tobytes() for f in frames if f.any())
    heard = b"".join(frame for _, frame in call.heard if any(frame))
    assert len(voiced) > RATE * 2 and heard.endswith(voiced)
    # In call time, TOM's answer starts after the question ends, within the turn's delay.
    said = pcm(question)
    middle = len(said) // 2 - len(said) // 2 % 2
    question_at = (sent.find(said[middle:middle + 3200]) - middle - sent.find(caller)) // 2
    question_end = question_at + int(audible_span(question, RATE)[1] * RATE)
    answer_start = next(i * 160 for i, f in enumerate(frames) if i * 160 > question_end
                        and f.any())
    assert 0 < (answer_start - question_end) / RATE < 3.0


def test_a_spoken_yes_records_the_call(consent_phone, engine):
    phone = consent_phone
    call = phone.call(b"")
    assert call.wait_answered(timeout_s=10)
    record = phone.service.registry.active()[0]
    call.wait_for(lambda: len(call.heard) * 0.02 > phrase_s(phone, "greeting"), 30,
                  "the consent question")
    wait_until(lambda: record.state == "listening", 30, "the consent question to end")
    call.say(pcm(np.concatenate([piper_say(engine, "Yes, that's fine.", RATE),
                                 silence(1.0, RATE)])))
    wait_until(lambda: os.path.exists(phone.recordings / f"{call.uuid}.wav"), 30,
               "the recording to begin")
    call.hangup()
    assert call.wait_ended(timeout_s=10)
    assert_nothing_left(phone)
    assert phone.engine.metrics.consent.labels(answer="given")._value.get() >= 1


@pytest.mark.parametrize("answer", ["silence", "keypad 2"])
def test_no_clear_yes_records_nothing(consent_phone, answer):
    phone = consent_phone
    call = phone.call(b"")
    assert call.wait_answered(timeout_s=10)
    if answer == "keypad 2":
        call.wait_for(lambda: len(call.heard) * 0.02 > phrase_s(phone, "greeting") + 1, 30,
                      "the consent question")
        call.send_dtmf("2")
    refused = phone.engine.phrase("consent_refused", RATE)
    wait_until(lambda: refused[len(refused) // 2] in [frame for _, frame in call.heard], 30,
               "TOM to say nothing is recorded")
    call.hangup()
    assert call.wait_ended(timeout_s=10)
    assert_nothing_left(phone)
    assert not phone.recordings.exists() or os.listdir(phone.recordings) == []
    wait_until(lambda: phone.service.store.recent_calls(1), 10, "the call record")
    assert phone.service.store.recent_calls(1)[0]["consent"] == "refused"
    metrics = phone.engine.metrics.consent
    assert metrics.labels(answer="no_answer" if answer == "silence" else "refused")._value.get()


# -- the browser page -------------------------------------------------------------------------

@pytest.mark.parametrize("ticked", [True, False])
def test_the_pages_checkbox_is_the_browser_callers_consent(engine, tmp_path, ticked):
    from testkit.wsclient import Client
    from tomctl.gateway.server import Gateway
    from tomctl.recording.recorder import BrowserRecordings
    from tomctl.store.calls import CallStore

    finished = []
    store = CallStore(str(tmp_path / "calls.db"), False, engine.metrics)
    store.start()
    writer = RecordingWriter(str(tmp_path / "recordings"), engine.metrics,
                             lambda recording, report: finished.append(recording))
    writer.start()
    gateway = Gateway(config.load({"TOM_GATEWAY_PORT": "0", "TOM_DEV_ALLOW_NO_JWT": "true"})
                      .gateway, engine, BrowserRecordings("consent", writer, store))
    gateway.start()
    try:
        client = Client(gateway.address)
        client.send_json({"type": "auth", "token": "", "record": ticked})
        client.wait_event("ready")
        while client.audio_bytes < 16000:            # half a second of the greeting
            client.receive()
        client.send_bytes(pcm(silence(0.5, 16000)))
        client.close()
        wait_until(lambda: gateway.connections == 0, 10, "the conversation to end")
        if ticked:
            wait_until(lambda: finished, 10, "the recording")
            with wave.open(finished[0].path) as wav:
                assert (wav.getnchannels(), wav.getframerate()) == (2, 16000)
                stereo = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
            assert stereo[:, 1].any() and not stereo[:, 0].any()    # TOM spoke, the page hushed
            row = store.recent_calls(1)[0]
            assert (row["id"], row["consent"], row["outcome"]) == (finished[0].call_id, "given",
                                                                   "browser")
        else:
            assert not os.listdir(tmp_path / "recordings") and store.recent_calls(1) == []
    finally:
        gateway.stop()
        writer.close()
        store.close()


def test_tomctl_purge_removes_recordings_past_retention_and_keeps_the_rest(consent_phone):
    phone = consent_phone
    calls = []
    for _ in range(2):
        calls.append(phone.call(b""))
        assert calls[-1].wait_answered(timeout_s=10)
        calls[-1].hangup()
        assert calls[-1].wait_ended(timeout_s=10)
    assert_nothing_left(phone)
    wait_until(lambda: len(phone.service.store.recent_calls(2)) == 2, 10, "the call records")
    call, recent = calls
    orphan = "0f0e0d0c-0b0a-4908-8706-05040302010f"       # no call record
    phone.recordings.mkdir(exist_ok=True)
    day_old = time.time() - 25 * 3600
    for name in (f"{call.uuid}.wav", f"{orphan}.wav", f"{recent.uuid}.wav"):
        (phone.recordings / name).write_bytes(b"RIFF")
    environ = {**os.environ, "TOM_ADMIN_PORT": str(phone.service.admin.address[1])}
    code, output = run_tomctl(environ, "purge", "--dry-run")
    assert code == 0 and f"{orphan}.wav" in output and "would delete 1 recording files " \
        "without a call record" in output and "would delete 0 recording files older" in output
    assert len(os.listdir(phone.recordings)) == 3
    os.utime(phone.recordings / f"{call.uuid}.wav", (day_old, day_old))   # past 24 hours
    code, output = run_tomctl(environ, "purge")
    assert code == 0 and "deleted 1 recording files older than 24.0 hours" in output, output
    assert os.listdir(phone.recordings) == [f"{recent.uuid}.wav"]
