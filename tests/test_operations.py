"""Operating a real `tomctl serve` process against the fake FreeSWITCH: status, calls,
metrics and selfcheck show its calls, and a kill -9 mid-call loses no finished record."""

import json
import os
import sqlite3

import pytest

from tests.cli import run_tomctl
from testkit.serve import start_serve
from testkit.fakes import FakeSwitch
from tests.wsclient import http_get
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
               "TOM_LOG_FORMAT": "json"}
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
        code, output = run_tomctl(cli, "selfcheck", "--json")
        assert code == 0 and json.loads(output)["status"] == "green", output
        metrics = http_get(("127.0.0.1", ready["admin_port"]), "/metrics")
        assert "tom_telephony_active_calls 1.0" in metrics
        assert 'tom_telephony_calls_total{outcome="abandoned"} 1.0' in metrics

        process.kill()                 # kill -9, in the middle of the second call
        process.wait(timeout=10)
        assert second.wait_ended(timeout_s=10) and second.fell_back   # the caller goes on
    finally:
        if process.poll() is None:
            process.kill()
        switch.stop()

    # TOM starts again on the same database and still knows the finished call.
    process, ready = start_serve(environ)
    try:
        code, output = run_tomctl({**environ, "TOM_ADMIN_PORT": str(ready["admin_port"])},
                                  "calls", "--json")
        assert code == 0 and [c["id"] for c in json.loads(output)["finished"]] == [first.uuid]
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0

    store = CallStore(str(database), False, Metrics())
    store.start()                      # opens cleanly after the crash
    try:
        finished = store.recent_calls(10)
        assert [(c["id"], c["outcome"]) for c in finished] == [(first.uuid, "abandoned")]
        assert finished[0]["caller_hash"] and finished[0]["answered_at"]
        with sqlite3.connect(database) as db:
            assert db.execute("pragma integrity_check").fetchone() == ("ok",)
            assert db.execute("select count(*) from calls where id = ?",
                              [second.uuid]).fetchone() == (1,)
    finally:
        store.close()
