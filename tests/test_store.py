"""The call store on a real SQLite file: migrations, records, a crash, a read-only disk."""

import sqlite3
import sys
import textwrap
import time

import gevent.subprocess

from tomctl.metrics import Metrics
from tomctl.store.calls import CallStore


def test_records_survive_a_kill_minus_9_mid_call(tmp_path):
    path = tmp_path / "calls.db"
    script = textwrap.dedent(f"""
        import os, signal
        from tomctl.metrics import Metrics
        from tomctl.store.calls import CallStore
        store = CallStore({str(path)!r}, False, Metrics())
        store.start()
        store.call_started("done", "hash", 1.0)
        store.turn("done", 1, "answered", {{"e2e_ms": 640.0}}, False)
        store.call_ended("done", 9.0, "answered", "NORMAL_CLEARING", 1)
        store.call_started("live", "hash", 10.0)
        store.turn("live", 1, "answered", {{"e2e_ms": 700.0}}, False)
        assert store.turns_of("live")          # every write before this one has committed
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    process = gevent.subprocess.Popen([sys.executable, "-c", script])
    assert process.wait(timeout=60) == -9
    store = CallStore(str(path), False, Metrics())
    store.start()                               # opens cleanly, migrations already applied
    try:
        calls = store.recent_calls(10)
        # The call the kill cut off is ended as lost, at its last known moment.
        assert [(c["id"], c["outcome"], c["turns"], c["e2e_p50_ms"]) for c in calls] == \
            [("live", "lost", 1, None), ("done", "answered", 1, 640.0)]
        assert calls[0]["ended_at"] >= 10.0 and calls[0]["hangup_cause"] is None
        assert [t["number"] for t in store.turns_of("live")] == [1]
        with sqlite3.connect(path) as db:
            assert db.execute("pragma integrity_check").fetchone() == ("ok",)
    finally:
        store.close()


def test_transcripts_are_kept_only_when_allowed(tmp_path):
    for allowed in (False, True):
        store = CallStore(str(tmp_path / f"{allowed}.db"), allowed, Metrics())
        store.start()
        store.call_started("c", "hash", 1.0)
        store.turn("c", 1, "answered", {}, False, "my number is 123", "thanks")
        turn = store.turns_of("c")[0]
        store.close()
        assert (turn["transcript"] is not None) is allowed


def test_a_read_only_database_is_reported_and_loses_nothing_else(tmp_path):
    path = tmp_path / "calls.db"
    metrics = Metrics()
    store = CallStore(str(path), False, metrics)
    store.start()
    store.call_started("before", "hash", 1.0)
    assert store.check_writable() == ""
    store.close()
    # Read-only the SQLite way (root ignores file modes): the same file, opened read-only.
    store = CallStore(f"file:{path}?mode=ro", False, metrics)
    store.start()
    try:
        assert "readonly" in store.check_writable()
        store.call_started("after", "hash", 2.0)
        assert store.recent_calls(5) == []      # the finished-call query still works
        assert "readonly" in store.last_error
        assert metrics.errors.labels(component="store")._value.get() >= 1
    finally:
        store.close()


def test_purge_deletes_only_old_records(tmp_path):
    store = CallStore(str(tmp_path / "calls.db"), False, Metrics())
    store.start()
    try:
        now = time.time()
        for call_id, started in (("old", now - 40 * 86400), ("new", now - 3600)):
            store.call_started(call_id, "hash", started)
            store.turn(call_id, 1, "answered", {"e2e_ms": 600.0}, False)
            store.call_ended(call_id, started + 60, "answered", "NORMAL_CLEARING", 1)
        assert store.purge(30 * 86400) == {"calls": 1, "turns": 1}
        assert [c["id"] for c in store.recent_calls(10)] == ["new"]
        assert store.turns_of("old") == [] and len(store.turns_of("new")) == 1
    finally:
        store.close()
