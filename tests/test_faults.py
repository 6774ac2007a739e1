"""Faults on a running `tomctl serve` process (real models, the fake FreeSWITCH over real
sockets, calls recorded): the switch restarts, and the disk stops taking writes. Each fault's outcome is
asserted; how fast TOM recovers is measured by bench/soak.py. (SIGTERM: test_operations;
a model failing mid-turn: test_calls.)"""

import json
import os
import resource
import sqlite3

import pytest

from testkit.fakes import FakeSwitch
from testkit.serve import start_serve
from tests.leaks import wait_until
from testkit.wsclient import http_get

pytestmark = pytest.mark.timeout(240)


class Served:
    def __init__(self, tmp_path) -> None:
        self.switch = FakeSwitch(tom_address=("127.0.0.1", 1), fallback_extension="operator")
        self.switch.start()
        self.database = tmp_path / "calls.db"
        self.recordings = tmp_path / "recordings"
        environ = {**os.environ, "TOM_ESL_LISTEN_PORT": "0", "TOM_ADMIN_PORT": "0",
                   "TOM_GATEWAY_PORT": "0", "TOM_DEV_ALLOW_NO_JWT": "true",
                   "TOM_FS_PORT": str(self.switch.esl_port), "TOM_FS_PASSWORD": "ClueCon",
                   "TOM_DB_PATH": str(self.database), "TOM_SPOOL_DIR": str(tmp_path / "spool"),
                   "TOM_MEDIA_PORT_FIRST": "44200", "TOM_MEDIA_PORT_LAST": "44299",
                   "TOM_RECORDING": "always",
                   "TOM_RECORDING_DIR": str(tmp_path / "recordings")}
        self.process, ready = start_serve(environ)
        self.admin = ("127.0.0.1", ready["admin_port"])
        self.switch.tom_address = ("127.0.0.1", ready["esl_port"])

    def get(self, path: str) -> dict:
        return json.loads(http_get(self.admin, path).split("\r\n\r\n", 1)[1])

    def metric(self, line_start: str) -> float:
        lines = http_get(self.admin, "/metrics").splitlines()
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(line_start))

    def a_call_is_answered_and_ends(self) -> str:
        call = self.switch.place_call(b"")
        assert call.wait_answered(timeout_s=15)
        assert call.wait_heard(3200, timeout_s=10)        # TOM's greeting reaches the caller
        call.hangup()
        assert call.wait_ended(timeout_s=10) and not call.fell_back
        return call.uuid

    def close(self) -> None:
        self.process.terminate()
        try:
            assert self.process.wait(timeout=60) == 0
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.switch.stop()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    served = Served(tmp_path_factory.mktemp("served"))
    yield served
    served.close()


def test_the_link_comes_back_after_a_freeswitch_restart_and_calls_are_answered(served):
    wait_until(lambda: served.get("/status")["freeswitch_link"]["state"] == "up", 15, "link")
    connects = served.get("/status")["freeswitch_link"]["connects"]
    served.switch.stop()
    wait_until(lambda: served.get("/status")["freeswitch_link"]["state"] == "down", 30,
               "the link to drop")
    served.switch.start()                 # on the same port, as a restarted FreeSWITCH
    wait_until(lambda: served.get("/status")["freeswitch_link"]["connects"] == connects + 1,
               30, "the link to come back")
    assert served.get("/status")["freeswitch_link"]["state"] == "up"
    served.a_call_is_answered_and_ends()


def test_writes_that_fail_cost_no_call_and_resume(served):
    before = served.a_call_is_answered_and_ends()
    wait_until(lambda: before in {c["id"] for c in served.get("/calls")["finished"]}, 10,
               "the call's record")
    errors = served.metric('tom_errors_total{component="store"}')
    # RLIMIT_FSIZE 0: every write TOM makes to a file fails (EFBIG), as on a full disk or a
    # file system gone read-only, without needing root to fill or remount one.
    soft, hard = resource.prlimit(served.process.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(served.process.pid, resource.RLIMIT_FSIZE, (0, hard))
    try:
        served.a_call_is_answered_and_ends()      # the call goes on regardless
        wait_until(lambda: served.metric('tom_errors_total{component="store"}') > errors, 10,
                   "the failed writes to be counted")
        checks = {c["name"]: c["status"] for c in served.get("/selfcheck")["checks"]}
        assert checks["database"] == "red"
        # Its recording stopped, counted; the call itself went on.
        wait_until(lambda: served.metric('tom_recordings_total{result="failed"}') >= 1, 10,
                   "the stopped recording to be counted")
        assert served.metric('tom_errors_total{component="recording"}') >= 1
    finally:
        resource.prlimit(served.process.pid, resource.RLIMIT_FSIZE, (soft, hard))
    after = served.a_call_is_answered_and_ends()  # writes resume
    wait_until(lambda: after in {c["id"] for c in served.get("/calls")["finished"]}, 10,
               "the next call's record")
    sidecar = served.recordings / f"{after}.json"
    wait_until(sidecar.exists, 10, "the next call's recording")     # recording resumes too
    assert json.loads(sidecar.read_text())["error"] is None
    finished = {c["id"] for c in served.get("/calls")["finished"]}
    assert before in finished                     # nothing already written is lost
    checks = {c["name"]: c["status"] for c in served.get("/selfcheck")["checks"]}
    assert checks["database"] == "green"
    with sqlite3.connect(served.database) as db:
        assert db.execute("pragma integrity_check").fetchone() == ("ok",)
