"""Operating a real `tomctl serve` process against the fake FreeSWITCH: status, calls,
metrics and selfcheck show its calls, a kill -9 mid-call loses no record, and the rough
edges a new operator meets (a port in use, a pipe closed early) end in one clear line."""

import json
import os
import socket
import sqlite3
import subprocess
import wave

import pytest

from tests.cli import run_tomctl, run_tomctl_into_a_closed_pipe
from tests.leaks import wait_until
from testkit.serve import start_serve
from testkit.fakes import FakeSwitch
from testkit.wsclient import http_get
from tomctl.metrics import Metrics
from tomctl.store.calls import CallStore

pytestmark = pytest.mark.timeout(240)


def test_a_running_service_shows_its_calls_and_survives_kill_9(tmp_path):
    switch = FakeSwitch(tom_address=("127.0.0.1", 1))
    switch.start()
    database = tmp_path / "calls.db"
    environ = {**os.environ, "TOM_ESL_LISTEN_PORT": "0", "TOM_ADMIN_PORT": "0",
               "TOM_GATEWAY_PORT": "0", "TOM_DEV_ALLOW_NO_JWT": "true",
               "TOM_FS_PORT": str(switch.esl_port), "TOM_FS_PASSWORD": "ClueCon",
               "TOM_DB_PATH": str(database), "TOM_SPOOL_DIR": str(tmp_path / "spool"),
               "TOM_MEDIA_PORT_FIRST": "44000", "TOM_MEDIA_PORT_LAST": "44099",
               "TOM_LOG_FORMAT": "json", "TOM_RECORDING": "always",
               "TOM_RECORDING_DIR": str(tmp_path / "recordings")}
    process, ready = start_serve(environ)
    try:
        switch.tom_address = ("127.0.0.1", ready["esl_port"])
        cli = {**environ, "TOM_ADMIN_PORT": str(ready["admin_port"])}
        first = switch.place_call(b"")
        assert first.wait_answered(timeout_s=15)
        first.wait_heard(3200, timeout_s=10)
        first.hangup()
        assert first.wait_ended(timeout_s=10)
        second = switch.place_call(b"")
        assert second.wait_answered(timeout_s=15)

        code, output = run_tomctl(cli, "calls", "--json")
        calls = json.loads(output)
        assert code == 0 and [c["id"] for c in calls["active"]] == [second.uuid]
        assert [(c["id"], c["outcome"]) for c in calls["finished"]] == [(first.uuid, "abandoned")]
        code, output = run_tomctl(cli, "status")
        assert code == 0 and "active calls" in output and "up" in output
        for command in ("calls", "status"):      # `tomctl calls | head`, the reader gone
            assert run_tomctl_into_a_closed_pipe(cli, command) == (141, "")
        code, output = run_tomctl(cli, "selfcheck", "--json")
        assert code == 0 and json.loads(output)["status"] == "green", output
        metrics = http_get(("127.0.0.1", ready["admin_port"]), "/metrics")
        assert "tom_telephony_active_calls 1.0" in metrics
        assert 'tom_telephony_calls_total{outcome="abandoned"} 1.0' in metrics

        recording = tmp_path / "recordings" / f"{second.uuid}.wav"
        wait_until(lambda: recording.exists() and recording.stat().st_size > 44 + 8000 * 4,
                   20, "a second of the recording on disk")
        process.kill()                 # kill -9, in the middle of the second call
        process.wait(timeout=10)
        assert second.wait_ended(timeout_s=10) and second.fell_back   # the caller goes on
        # The recording cut off by the kill plays up to its last whole second.
        with wave.open(str(recording)) as wav:
            assert wav.getnchannels() == 2 and wav.getnframes() >= 8000
        soxi = subprocess.run(["soxi", "-D", str(recording)], capture_output=True, text=True,
                              timeout=30)
        assert soxi.returncode == 0 and float(soxi.stdout) >= 1.0, soxi.stderr
    finally:
        if process.poll() is None:
            process.kill()
        switch.stop()

    # TOM starts again on the same database, still knows the finished call, and shows the
    # one the crash cut off as lost.
    process, ready = start_serve(environ)
    try:
        cli = {**environ, "TOM_ADMIN_PORT": str(ready["admin_port"])}
        code, output = run_tomctl(cli, "calls", "--json")
        assert code == 0
        assert [(c["id"], c["outcome"], c["hangup_cause"])
                for c in json.loads(output)["finished"]] == [
            (second.uuid, "lost", None), (first.uuid, "abandoned", "NORMAL_CLEARING")]
        code, output = run_tomctl(cli, "calls")
        assert code == 0 and f"{second.uuid}  ended" in output and output.count("lost") == 1
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0

    store = CallStore(str(database), False, Metrics())
    store.start()                      # opens cleanly after the crash
    try:
        finished = store.recent_calls(10)
        assert [(c["id"], c["outcome"]) for c in finished] == [(second.uuid, "lost"),
                                                               (first.uuid, "abandoned")]
        assert all(c["caller_hash"] and c["answered_at"] for c in finished)
        assert finished[0]["ended_at"] >= finished[0]["answered_at"]
        with sqlite3.connect(database) as db:
            assert db.execute("pragma integrity_check").fetchone() == ("ok",)
    finally:
        store.close()


@pytest.mark.parametrize("setting", ["TOM_ESL_LISTEN_PORT", "TOM_GATEWAY_PORT",
                                     "TOM_ADMIN_PORT"])
def test_a_port_in_use_stops_serve_before_the_models_load_naming_its_setting(tmp_path,
                                                                              setting):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        environ = {**os.environ, "TOM_ESL_LISTEN_PORT": "0", "TOM_ADMIN_PORT": "0",
                   "TOM_GATEWAY_PORT": "0", "TOM_DEV_ALLOW_NO_JWT": "true",
                   "TOM_DB_PATH": str(tmp_path / "calls.db"),
                   "TOM_SPOOL_DIR": str(tmp_path / "spool"), "TOM_LOG_FORMAT": "json",
                   setting: str(port)}
        code, output = run_tomctl(environ, "serve")
    assert code == 2, output
    assert "model_loaded" not in output and "Traceback" not in output
    assert output.strip().splitlines() == [
        f"tomctl: error: port {port} on 127.0.0.1 is in use by another "
        f"process: set {setting} to a free port, or stop that process"]


def serve_environ(tmp_path, switch: FakeSwitch, **overrides) -> dict:
    return {**os.environ, "TOM_ESL_LISTEN_PORT": "0", "TOM_ADMIN_PORT": "0",
            "TOM_GATEWAY_PORT": "0", "TOM_DEV_ALLOW_NO_JWT": "true",
            "TOM_FS_PORT": str(switch.esl_port), "TOM_FS_PASSWORD": "ClueCon",
            "TOM_DB_PATH": str(tmp_path / "calls.db"), "TOM_SPOOL_DIR": str(tmp_path / "spool"),
            "TOM_MEDIA_PORT_FIRST": "44100", "TOM_MEDIA_PORT_LAST": "44199",
            "TOM_LOG_FORMAT": "json", **overrides}


@pytest.mark.parametrize("drain_s, caller_hangs_up", [(120, True), (2, False)])
def test_sigterm_takes_no_new_call_and_lets_the_current_ones_finish(tmp_path, drain_s,
                                                                    caller_hangs_up):
    switch = FakeSwitch(tom_address=("127.0.0.1", 1), fallback_extension="operator")
    switch.start()
    process, ready = start_serve(serve_environ(tmp_path, switch, TOM_DRAIN_S=str(drain_s)))
    try:
        switch.tom_address = ("127.0.0.1", ready["esl_port"])
        current = switch.place_call(b"")
        assert current.wait_answered(timeout_s=15)
        current.wait_heard(3200, timeout_s=10)
        process.terminate()
        stopping = _next_log_event(process, "stopping")
        assert (stopping["active_calls"], stopping["drain_s"]) == (1, drain_s)
        late = switch.place_call(b"")               # after SIGTERM: handed back at once
        assert late.wait_ended(timeout_s=10) and late.fell_back and not late.stuck
        assert [command.split("\n")[0] for command in late.commands] == ["connect"]
        assert _next_log_event(process, "call_rejected")["reason"] == "stopping"
        assert process.poll() is None and not current.hung_up   # the call goes on
        heard = len(current.heard)
        assert current.wait_for(lambda: len(current.heard) > heard + 50, 10, "TOM speaking on")
        if caller_hangs_up:
            current.hangup()
        else:                                        # the drain ends: to the fallback
            assert current.wait_fell_back(timeout_s=drain_s + 10)
        assert current.wait_ended(timeout_s=10)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        switch.stop()


def _next_log_event(process, name: str) -> dict:
    for line in process.stdout:
        entry = json.loads(line)
        if entry["event"] == name:
            return entry
    raise AssertionError(f"tomctl serve exited without logging {name}")
