"""Call and turn records in SQLite (sqlite-utils), written as calls progress.

One real thread owns the connection and does every write, in order, so the gevent hub never
waits on the disk and SQLite never sees two writers. WAL mode keeps readers (``tomctl
calls``) from blocking it, and every record is committed on its own: a crash loses at most
the turn in progress. A failed write (full disk, read-only file) is logged, counted in
tom_errors_total{component="store"} and kept as ``last_error`` for the selfcheck; the call
itself goes on.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from typing import Any, Callable

import sqlite_utils
from sqlite_utils import Migrations

from tomctl.errors import ConfigError
from tomctl.logs import event
from tomctl.metrics import Metrics
from tomctl.speech.offload import Workers

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 5.0
MIGRATIONS = Migrations("tom")


@MIGRATIONS()
def m001_calls_and_turns(db: sqlite_utils.Database) -> None:
    db["calls"].create({
        "id": str, "caller_hash": str, "started_at": float, "answered_at": float,
        "ended_at": float, "hangup_cause": str, "outcome": str, "turns": int,
        "e2e_p50_ms": float, "e2e_max_ms": float,
    }, pk="id", not_null={"started_at"})
    db["turns"].create({
        "call_id": str, "number": int, "at": float, "outcome": str, "stt_ms": float,
        "llm_first_token_ms": float, "tts_first_audio_ms": float, "e2e_ms": float,
        "interrupted": int, "transcript": str, "reply": str,
    }, pk=("call_id", "number"), foreign_keys=[("call_id", "calls", "id")])
    db["calls"].create_index(["started_at"])


@MIGRATIONS()
def m002_consent_and_recordings(db: sqlite_utils.Database) -> None:
    db["calls"].add_column("consent", str)        # given, refused, not_asked, or NULL (off)
    db["recordings"].create({
        "call_id": str, "file": str, "started_at": float, "ended_at": float, "seconds": float,
        "consent": str, "dropped_frames": int, "error": str, "qc_verdict": str, "qc": str,
    }, pk="call_id")


@MIGRATIONS()
def m003_learning(db: sqlite_utils.Database) -> None:
    db["calls"].add_column("variant", str)
    db["calls"].add_column("shares", str)       # JSON: every variant's chance at the choice
    db["calls"].add_column("signals", str)      # JSON: tomctl.learning.reward.Signals
    db["calls"].add_column("reward", float)
    db["feedback"].create({"call_id": str, "at": float, "kind": str, "value": int},
                          foreign_keys=[("call_id", "calls", "id")])
    db["variant_states"].create({"variant": str, "state": str, "pinned": int, "reason": str,
                                 "at": float}, pk="variant")


class CallStore:
    def __init__(self, path: str, store_transcripts: bool, metrics: Metrics) -> None:
        self.path = path
        self._store_transcripts = store_transcripts
        self._metrics = metrics
        self._writer = Workers("store", 1)
        self._db: sqlite_utils.Database | None = None
        self.last_error = ""
        self.last_write_at = 0.0

    @property
    def directory(self) -> str:
        path = self.path.removeprefix("file:").split("?")[0]
        return os.path.dirname(os.path.abspath(path))

    def start(self) -> None:
        """Open (creating or migrating) the database; fails at start naming the setting."""
        try:
            self._writer.run(self._open, timeout_s=30)
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(f"cannot open the call store TOM_DB_PATH={self.path!r}: "
                              f"{exc}") from None

    def close(self) -> None:
        self._writer.run(self._close, timeout_s=READ_TIMEOUT_S)
        self._writer.close()

    # -- writes (fire and forget, in order) ---------------------------------------------------

    def call_started(self, call_id: str, caller_hash: str, started_at: float) -> None:
        self._write(lambda db: db["calls"].insert(
            {"id": call_id, "caller_hash": caller_hash, "started_at": started_at, "turns": 0},
            replace=True))

    def call_answered(self, call_id: str, answered_at: float) -> None:
        self._write(lambda db: db["calls"].update(call_id, {"answered_at": answered_at}))

    def turn(self, call_id: str, number: int, outcome: str, latencies: dict[str, float],
             interrupted: bool, transcript: str = "", reply: str = "") -> None:
        row: dict[str, Any] = {"call_id": call_id, "number": number, "at": time.time(),
                               "outcome": outcome, "interrupted": int(interrupted),
                               **{key: latencies.get(key) for key in
                                  ("stt_ms", "llm_first_token_ms", "tts_first_audio_ms",
                                   "e2e_ms")}}
        if self._store_transcripts:
            row.update(transcript=transcript, reply=reply)
        self._write(lambda db: db["turns"].insert(row, replace=True))

    def call_ended(self, call_id: str, ended_at: float, outcome: str, hangup_cause: str,
                   turns: int) -> None:
        def write(db: sqlite_utils.Database) -> None:
            e2e = sorted(r["e2e_ms"] for r in db.query(
                "select e2e_ms from turns where call_id = ? and e2e_ms is not null", [call_id]))
            db["calls"].update(call_id, {
                "ended_at": ended_at, "outcome": outcome, "hangup_cause": hangup_cause,
                "turns": turns, "e2e_p50_ms": e2e[len(e2e) // 2] if e2e else None,
                "e2e_max_ms": e2e[-1] if e2e else None})
        self._write(write)

    def call_variant(self, call_id: str, variant: str, shares: dict[str, float]) -> None:
        self._write(lambda db: db["calls"].update(
            call_id, {"variant": variant, "shares": json.dumps(shares)}))

    def call_scored(self, call_id: str, signals: dict, reward: float) -> None:
        self._write(lambda db: db["calls"].update(
            call_id, {"signals": json.dumps(signals), "reward": reward}))

    def calls_rescored(self, rewards: list[tuple[str, float]]) -> None:
        """New rewards for many calls (tomctl learn), in one transaction."""
        if rewards:
            self._write(lambda db: db.conn.executemany(
                "update calls set reward = ? where id = ?",
                [(score, call_id) for call_id, score in rewards]))

    def feedback(self, call_id: str, kind: str, value: int) -> None:
        """A caller's rating (kind ``rating``, 1-5, or ``thumbs``, 1 or 5): no words with it,
        and the caller only as the call's hash."""
        self._write(lambda db: db["feedback"].insert(
            {"call_id": call_id, "at": time.time(), "kind": kind, "value": value}))

    def variant_state(self, variant: str, state: str, pinned: bool, reason: str) -> None:
        self._write(lambda db: db["variant_states"].insert(
            {"variant": variant, "state": state, "pinned": int(pinned), "reason": reason,
             "at": time.time()}, replace=True))

    def learning_log(self) -> tuple[list[dict], list[dict]]:
        """(scored calls in order: variant, shares, signals, reward; variant states)."""
        def read() -> tuple[list[dict], list[dict]]:
            calls = list(self._db.query(
                "select id, variant, shares, signals, reward from calls "
                "where variant is not null and reward is not null order by started_at"))
            return calls, list(self._db.query("select * from variant_states"))
        return self._writer.run(read, timeout_s=READ_TIMEOUT_S)

    def call_consent(self, call_id: str, consent: str) -> None:
        self._write(lambda db: db["calls"].update(call_id, {"consent": consent}))

    def recording(self, sidecar: dict, qc: dict | None) -> None:
        """A finished recording: its sidecar and its quality checks (None: not checked)."""
        row = {"call_id": sidecar["call"], "file": sidecar["file"],
               "started_at": sidecar["started_at"], "ended_at": sidecar["ended_at"],
               "seconds": sidecar["seconds"], "consent": sidecar["consent"],
               "dropped_frames": sidecar["dropped_frames"], "error": sidecar["error"],
               "qc_verdict": qc["verdict"] if qc else None,
               "qc": json.dumps(qc) if qc else None}
        self._write(lambda db: db["recordings"].insert(row, replace=True))

    def forget_recordings(self, call_ids: list[str]) -> None:
        if not call_ids:
            return
        self._write(lambda db: db.execute(
            f"delete from recordings where call_id in ({','.join('?' * len(call_ids))})",
            call_ids))

    # -- reads ------------------------------------------------------------------------------

    def known_calls(self, call_ids: list[str]) -> set[str]:
        """Which of ``call_ids`` still have a call record."""
        def read() -> set[str]:
            known: set[str] = set()
            for start in range(0, len(call_ids), 500):
                chunk = call_ids[start:start + 500]
                known |= {row["id"] for row in self._db.query(
                    f"select id from calls where id in ({','.join('?' * len(chunk))})", chunk)}
            return known
        return self._writer.run(read, timeout_s=READ_TIMEOUT_S)

    def recording_of(self, call_id: str) -> dict | None:
        rows = self._writer.run(lambda: list(self._db.query(
            "select * from recordings where call_id = ?", [call_id])), timeout_s=READ_TIMEOUT_S)
        return rows[0] if rows else None

    def recent_calls(self, limit: int) -> list[dict]:
        return self._writer.run(lambda: list(self._db.query(
            "select * from calls where ended_at is not null order by started_at desc limit ?",
            [limit])), timeout_s=READ_TIMEOUT_S)

    def turns_of(self, call_id: str) -> list[dict]:
        return self._writer.run(lambda: list(self._db.query(
            "select * from turns where call_id = ? order by number", [call_id])),
            timeout_s=READ_TIMEOUT_S)

    def latency_summary(self, window_s: float) -> dict:
        """e2e p50/p95 in ms over the turns of the last ``window_s`` seconds."""
        since = time.time() - window_s
        values = sorted(self._writer.run(lambda: [row["e2e_ms"] for row in self._db.query(
            "select e2e_ms from turns where at > ? and e2e_ms is not null", [since])],
            timeout_s=READ_TIMEOUT_S))
        if not values:
            return {"p50": None, "p95": None, "turns": 0}
        return {"p50": round(values[len(values) // 2], 1),
                "p95": round(values[min(len(values) - 1, int(len(values) * 0.95))], 1),
                "turns": len(values)}

    def purge(self, older_than_s: float, dry_run: bool = False) -> dict:
        """Delete calls (and their turns) that started more than ``older_than_s`` ago;
        with ``dry_run``, only count them."""
        cutoff = time.time() - older_than_s

        def count() -> dict:
            calls = self._db.execute("select count(*) from calls where started_at < ?",
                                     [cutoff]).fetchone()[0]
            turns = self._db.execute("select count(*) from turns where call_id in "
                                     "(select id from calls where started_at < ?)",
                                     [cutoff]).fetchone()[0]
            return {"calls": calls, "turns": turns}

        def work() -> dict:
            with self._db.conn:
                turns = self._db.execute(
                    "delete from turns where call_id in "
                    "(select id from calls where started_at < ?)", [cutoff]).rowcount
                self._db.execute("delete from recordings where call_id in "
                                 "(select id from calls where started_at < ?)", [cutoff])
                calls = self._db.execute("delete from calls where started_at < ?",
                                         [cutoff]).rowcount
            return {"calls": calls, "turns": turns}
        return self._writer.run(count if dry_run else work, timeout_s=60)

    def check_writable(self) -> str:
        """'' if a write commits now, else why not (for the selfcheck)."""
        def probe() -> str:
            try:
                with self._db.conn:
                    self._db.execute("create table if not exists _probe (at real)")
                    self._db.execute("delete from _probe")
                    self._db.execute("insert into _probe values (?)", [time.time()])
                return ""
            except sqlite3.Error as exc:
                return str(exc)
        return self._writer.run(probe, timeout_s=READ_TIMEOUT_S)

    # -- the writer thread ------------------------------------------------------------------

    def _open(self) -> None:
        uri = self.path.startswith("file:")     # e.g. file:/var/lib/tom/calls.db?mode=ro
        if not uri:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        # One thread uses the connection, but not always the same one of the pool's life.
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=5, uri=uri)
        self._db = sqlite_utils.Database(conn)
        self._db.enable_wal()
        MIGRATIONS.apply(self._db)
        self._end_lost_calls()

    def _end_lost_calls(self) -> None:
        """Calls a previous run left open (kill -9, power loss) ended with it: outcome
        ``lost``, at the last moment known of them, hangup cause unknown (NULL)."""
        try:
            with self._db.conn:
                lost = self._db.execute(
                    "update calls set outcome = 'lost', "
                    "ended_at = coalesce((select max(at) from turns where call_id = calls.id), "
                    "answered_at, started_at), "
                    "turns = (select count(*) from turns where call_id = calls.id) "
                    "where ended_at is null").rowcount
        except sqlite3.Error as exc:    # a read-only store: the selfcheck says so
            self.last_error = str(exc)
            event(log, "calls_lost_not_marked", level=logging.WARNING, error=str(exc))
            return
        if lost:
            event(log, "calls_lost", level=logging.WARNING, calls=lost,
                  why="left open by a previous run that did not stop cleanly")

    def _close(self) -> None:
        if self._db is not None:
            self._db.conn.close()

    def _write(self, change: Callable[[sqlite_utils.Database], Any]) -> None:
        def work() -> None:
            try:
                with self._db.conn:
                    change(self._db)
                self.last_write_at = time.time()
            except sqlite3.Error as exc:      # full disk, read-only file, locked too long
                self.last_error = str(exc)
                self._metrics.record_error("store")
                event(log, "store_write_failed", level=logging.ERROR, error=str(exc))
        self._writer.submit(work)
